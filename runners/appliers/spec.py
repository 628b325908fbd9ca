"""What a ``setting = "..."`` line in a job file means, checked when the job is read.

A parameter with ``apply = "setting"`` names the outside-world setting it controls as
``FAMILY:KEY`` or, where the setting lives on a named thing, ``FAMILY:SCOPE:KEY``:

| family | form | applied by |
| --- | --- | --- |
| ``lustre`` | ``lustre:stripe_count`` / ``stripe_size`` / ``layout`` | ``lfs setstripe`` on the trial's fresh output folder |
| ``lustre`` | ``lustre:osc.*.max_rpcs_in_flight`` (any ``lctl`` client parameter) | ``lctl set_param`` (never ``-P``; root) |
| ``romio`` | ``romio:cb_buffer_size`` (any ROMIO hint) | a ``ROMIO_HINTS`` file per trial and ``TUNESMITH_ROMIO_*`` variables |
| ``hdf5`` | ``hdf5:alignment_size`` ... (see ``HDF5_KEYS``) | ``TUNESMITH_HDF5_*`` variables the workload applies through h5py |
| ``posix`` | ``posix:transfer_size`` (any knob the workload declares) | ``TUNESMITH_POSIX_*`` variables |
| ``block`` | ``block:sda:read_ahead`` / ``block:sda:scheduler`` | ``blockdev --setra`` / ``/sys/block/sda/queue/scheduler`` (root) |
| ``gluster`` | ``gluster:VOLUME:performance.write-behind`` | ``gluster volume set`` (restored with ``set`` or ``reset``) |
| ``juicefs`` | ``juicefs:/MOUNT/POINT:writeback`` | a remount with the option (mounts started by ``runners/filesystems``) |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import JobError

STRIPE_KEYS = ("stripe_count", "stripe_size", "layout")
HDF5_KEYS = (
    "alignment_threshold", "alignment_size", "chunk_shape", "chunk_cache_mb", "chunk_cache_slots",
    "meta_block_size", "mdc_size_mb", "coll_metadata", "libver",
)
# lctl parameters a study must never change: data integrity is not a tuning knob
FORBIDDEN_LCTL = re.compile(r"checksum", re.IGNORECASE)
SCOPED = ("block", "gluster", "juicefs")
FAMILIES = ("lustre", "romio", "hdf5", "posix", "block", "gluster", "juicefs")
EXAMPLES = {
    "lustre": "lustre:stripe_count or lustre:osc.*.max_rpcs_in_flight",
    "romio": "romio:cb_buffer_size",
    "hdf5": "hdf5:alignment_size",
    "posix": "posix:transfer_size",
    "block": "block:sda:read_ahead or block:sda:scheduler",
    "gluster": "gluster:VOLUME:performance.write-behind",
    "juicefs": "juicefs:/mnt/jfs:writeback",
}
_KEY = re.compile(r"^[A-Za-z0-9_.*\-]+$")


@dataclass(frozen=True)
class Setting:
    """One parsed setting: its family, the thing it lives on (volume, device, mount point) and its key."""

    family: str
    key: str
    scope: str = ""

    @property
    def text(self) -> str:
        return f"{self.family}:{self.scope}:{self.key}" if self.scope else f"{self.family}:{self.key}"

    @property
    def needs_root(self) -> bool:
        """Whether applying it needs root (kernel tunables, Lustre client settings, file system daemons)."""
        if self.family == "lustre":
            return self.key not in STRIPE_KEYS
        return self.family in ("block", "gluster", "juicefs")

    @property
    def env_name(self) -> str:
        """The environment variable a workload-side setting is exported as."""
        return f"TUNESMITH_{self.family.upper()}_{re.sub(r'[^A-Za-z0-9]', '_', self.key).upper()}"


def parse_setting(text: object, *, where: str) -> Setting:
    """The ``Setting`` a job's ``setting = "..."`` names, or a one-line JobError naming the fix."""
    if not isinstance(text, str) or not text.strip():
        raise JobError(f"{where}.setting: missing or empty", 'name it as FAMILY:KEY, e.g. "romio:cb_buffer_size"')
    text = text.strip()
    family, sep, rest = text.partition(":")
    if not sep:
        dotted = text.partition(".")
        if dotted[0] in FAMILIES and dotted[2]:
            raise JobError(f"{where}.setting: {text!r} uses a dot after the family",
                           f'write "{dotted[0]}:{dotted[2]}"')
        raise JobError(f"{where}.setting: {text!r} names no family",
                       f"write FAMILY:KEY with FAMILY one of {', '.join(FAMILIES)}")
    if family not in FAMILIES:
        raise JobError(f"{where}.setting: unknown family {family!r}", f"use one of {', '.join(FAMILIES)}")
    scope = ""
    if family in SCOPED:
        # a mount point may hold colons, an option never does: split the last one for JuiceFS
        scope, _, rest = rest.rpartition(":") if family == "juicefs" else rest.partition(":")
        if not scope or not rest:
            raise JobError(f"{where}.setting: {family} settings name what they live on",
                           f'write "{EXAMPLES[family]}"')
    key = rest
    if not _KEY.match(key):
        raise JobError(f"{where}.setting: key {key!r} has characters no {family} setting uses",
                       f'write "{EXAMPLES[family]}"')
    if family == "lustre" and key not in STRIPE_KEYS:
        if FORBIDDEN_LCTL.search(key):
            raise JobError(f"{where}.setting: {key} is off-limits (checksums protect data, they are not tuned)",
                           "remove this parameter")
        if "." not in key:
            raise JobError(f"{where}.setting: unknown Lustre setting {key!r}",
                           f"use {', '.join(STRIPE_KEYS)} or an lctl client parameter such as osc.*.max_rpcs_in_flight")
    if family == "hdf5" and key not in HDF5_KEYS:
        raise JobError(f"{where}.setting: unknown HDF5 property {key!r}", f"use one of {', '.join(HDF5_KEYS)}")
    if family == "block" and key not in ("read_ahead", "scheduler"):
        raise JobError(f"{where}.setting: unknown block-device setting {key!r}", "use read_ahead or scheduler")
    if family == "juicefs" and not scope.startswith("/"):
        raise JobError(f"{where}.setting: the JuiceFS mount point {scope!r} is not absolute",
                       f'write "{EXAMPLES[family]}"')
    return Setting(family=family, key=key, scope=scope)


def settings_of(params: object, *, where: str = "workload.params") -> dict[str, Setting]:
    """``{param name: Setting}`` for the ``apply = "setting"`` parameters; a JobError for a missing or stray name."""
    out: dict[str, Setting] = {}
    for p in params:  # type: ignore[attr-defined]
        if p.apply == "setting":
            out[p.name] = parse_setting(p.setting, where=f"{where}.{p.name}")
        elif p.setting:
            raise JobError(f"{where}.{p.name}.setting: only used with apply = \"setting\"",
                           'add apply = "setting" or remove the setting line')
    return out
