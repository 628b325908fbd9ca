"""Appliers: put file-system and I/O-library settings in place through the change ledger, and restore them.

A job parameter with ``apply = "setting"`` and ``setting = "FAMILY:[SCOPE:]KEY"`` (``spec.py`` lists the
families) is applied for one trial by ``TrialSettings`` (``apply.py``) and restored after it.
"""

from .apply import SETTINGS_ENV, TrialSettings
from .spec import Setting, parse_setting, settings_of

__all__ = ["SETTINGS_ENV", "Setting", "TrialSettings", "parse_setting", "settings_of"]
