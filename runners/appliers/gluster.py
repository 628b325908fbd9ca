"""GlusterFS volume options: read (``gluster volume get``/``info``), set, and put back (``set`` or ``reset``).

An option the volume had not reconfigured before is restored with ``gluster volume reset VOL OPTION`` (so
``volume info`` looks as it did), one it had reconfigured with ``gluster volume set VOL OPTION OLD``.
"""

from __future__ import annotations

from typing import Any

from ..changes import LedgerEntry
from .shell import ApplyError, run_tool

GLUSTER = ["gluster", "--mode=script"]


def gluster_value(value: Any) -> str:
    """A parameter value as gluster writes it (``on``/``off`` for booleans)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def parse_volume_get(text: str, option: str) -> str:
    """The value of ``option`` in ``gluster volume get VOL OPTION`` output (a two-column table)."""
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] == option:
            return parts[1].strip()
    raise ApplyError(f"gluster volume get printed no value for {option}", "check the option name (gluster volume set help)")


def parse_reconfigured(text: str) -> dict[str, str]:
    """The ``Options Reconfigured:`` section of ``gluster volume info VOL`` as ``{option: value}``."""
    out: dict[str, str] = {}
    inside = False
    for line in text.splitlines():
        if line.strip() == "Options Reconfigured:":
            inside = True
            continue
        if inside:
            name, sep, value = line.partition(": ")
            if not sep or not name.strip() or " " in name.strip():
                if line.strip():
                    inside = False
                continue
            out[name.strip()] = value.strip()
    return out


def current(volume: str, option: str) -> dict[str, Any]:
    """The undo record of one option: its value now and whether the volume had reconfigured it."""
    value = parse_volume_get(run_tool([*GLUSTER, "volume", "get", volume, option]), option)
    reconfigured = parse_reconfigured(run_tool([*GLUSTER, "volume", "info", volume]))
    return {"volume": volume, "option": option, "value": value, "reconfigured": option in reconfigured}


def set_option(volume: str, option: str, value: Any) -> None:
    """``gluster volume set VOL OPTION VALUE``."""
    run_tool([*GLUSTER, "volume", "set", volume, option, gluster_value(value)])


def undo_option(entry: LedgerEntry) -> str:
    """Restore a volume option: ``set`` its old value if it was reconfigured, else ``reset`` it."""
    volume, option = entry.undo["volume"], entry.undo["option"]
    if entry.undo.get("reconfigured"):
        set_option(volume, option, entry.undo["value"])
        return f"gluster {volume}: {option} set back to {entry.undo['value']}"
    run_tool([*GLUSTER, "volume", "reset", volume, option])
    return f"gluster {volume}: {option} reset to its default ({entry.undo['value']})"
