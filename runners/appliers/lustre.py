"""Lustre: striping of a trial's fresh output folder (``lfs setstripe``) and client tunables (``lctl``).

Client tunables are set with ``lctl set_param NAME=VALUE`` only: never the persistent ``-P`` form, which
writes to the MGS and outlives the study. Checksum parameters are refused (see ``spec.FORBIDDEN_LCTL``).
The old values are read with ``lctl get_param`` (one line per matching device) and written to the change
ledger before anything is set. No Lustre is reachable on the machines this was written on: the command
construction and the parsing are tested on recorded output only, not against a live file system.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..changes import LedgerEntry
from .shell import ApplyError, run_tool
from .spec import FORBIDDEN_LCTL

_SIZE = re.compile(r"^(\d+)([KMGkmg]?)$")
_FIELD = re.compile(r"(?:lmm_)?(stripe_count|stripe_size|pattern|stripe_offset):\s*(-?\w+)")


def stripe_size_arg(value: Any) -> str:
    """A stripe size for ``-S``: bytes (a multiple of 64 KiB) or a ``1M``-style text."""
    text = str(value).strip()
    m = _SIZE.match(text)
    if not m:
        raise ApplyError(f"stripe_size {value!r} is not a size", "use bytes or a size such as 1M, 4M")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
    size = int(m.group(1)) * scale
    if size <= 0 or size % 65536:
        raise ApplyError(f"stripe_size {value!r} is not a positive multiple of 64 KiB", "use 64K, 1M, 4M ...")
    return str(size)


def setstripe_argv(directory: str | Path, stripes: dict[str, Any]) -> list[str]:
    """``lfs setstripe`` for ``directory`` with ``stripe_count``, ``stripe_size`` and ``layout`` (raid0 or mdt).

    ``layout = "mdt"`` puts the first stripe_size bytes (1 MiB if not given) on the MDT (Data-on-MDT) and
    the rest in a raid0 component with the given count.
    """
    argv = ["lfs", "setstripe"]
    count = stripes.get("stripe_count")
    size = stripes.get("stripe_size")
    layout = str(stripes.get("layout", "raid0"))
    if layout not in ("raid0", "mdt"):
        raise ApplyError(f"layout {layout!r} is not raid0 or mdt", "use raid0 or mdt")
    if layout == "mdt":
        argv += ["-E", stripe_size_arg(size) if size is not None else "1048576", "-L", "mdt", "-E", "-1"]
    if count is not None:
        if int(count) < -1 or int(count) == 0:
            raise ApplyError(f"stripe_count {count!r} is not -1 or a positive count", "use -1 (all OSTs) or 1, 2, 4 ...")
        argv += ["-c", str(int(count))]
    if size is not None and layout != "mdt":
        argv += ["-S", stripe_size_arg(size)]
    return [*argv, str(directory)]


def parse_getstripe(text: str) -> dict[str, Any]:
    """``stripe_count``, ``stripe_size``, ``pattern`` (and ``stripe_offset``) from ``lfs getstripe`` output.

    Reads both the file form (``lmm_stripe_count:  4`` one per line) and the directory form
    (``stripe_count:  1 stripe_size:   1048576 pattern:   raid0 stripe_offset: -1``); for a composite
    (PFL) layout the first component's values are returned.
    """
    out: dict[str, Any] = {}
    for key, value in _FIELD.findall(text):
        if key in out:
            continue
        out[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
    if "stripe_count" not in out:
        raise ApplyError("lfs getstripe printed no stripe_count", "check that the path is on Lustre")
    return out


def parse_get_param(text: str) -> dict[str, str]:
    """``{full name: value}`` from ``lctl get_param`` output (``name=value`` lines; multi-line stats skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and " " not in name and value.strip():
            out[name] = value.strip()
    return out


def set_param_argv(name: str, value: Any) -> list[str]:
    """``lctl set_param NAME=VALUE``: refuses checksum parameters and never uses ``-P``."""
    if FORBIDDEN_LCTL.search(name):
        raise ApplyError(f"{name} is off-limits (checksums protect data)", "remove this parameter from the job")
    if not re.fullmatch(r"[A-Za-z0-9_.*\-]+", name):
        raise ApplyError(f"{name!r} is not an lctl parameter name", "use a name such as osc.*.max_rpcs_in_flight")
    return ["lctl", "set_param", f"{name}={value}"]


def read_params(name: str) -> dict[str, str]:
    """The current values of every device matching ``name`` (``lctl get_param``)."""
    values = parse_get_param(run_tool(["lctl", "get_param", name]))
    if not values:
        raise ApplyError(f"lctl get_param {name} matched nothing", "check the parameter name on this client")
    return values


def undo_lctl(entry: LedgerEntry) -> str:
    """Put back every device's old value of an lctl parameter (one ``set_param`` per device)."""
    for name, value in entry.undo["values"].items():
        run_tool(set_param_argv(name, value))
    return f"restored {len(entry.undo['values'])} lctl value(s) of {entry.target}"


def undo_stripe(entry: LedgerEntry) -> str:
    """Drop the default layout set on a trial's output folder (if it still exists)."""
    directory = Path(entry.undo["path"])
    if not directory.exists():
        return f"{directory} is gone (its layout with it)"
    run_tool(["lfs", "setstripe", "-d", str(directory)])
    return f"removed the default layout of {directory}"
