"""Block-device settings (root only): read-ahead with ``blockdev --getra/--setra`` and the I/O scheduler."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..changes import LedgerEntry
from .shell import ApplyError, run_tool

SYS_BLOCK = Path("/sys/block")


def device_path(name: str) -> str:
    """``/dev/NAME`` for a device name (``sda``, ``nvme0n1``); a full ``/dev/...`` path is kept."""
    if not re.fullmatch(r"(/dev/)?[A-Za-z0-9_\-]+", name):
        raise ApplyError(f"{name!r} is not a block device name", "use a name such as sda or nvme0n1")
    return name if name.startswith("/dev/") else f"/dev/{name}"


def read_ahead(name: str) -> int:
    """The device's read-ahead in 512-byte sectors (``blockdev --getra``)."""
    text = run_tool(["blockdev", "--getra", device_path(name)]).strip()
    if not text.isdigit():
        raise ApplyError(f"blockdev --getra printed {text!r}", "check the device name")
    return int(text)


def setra_argv(name: str, sectors: Any) -> list[str]:
    """``blockdev --setra SECTORS /dev/NAME``."""
    if isinstance(sectors, bool) or int(sectors) < 0:
        raise ApplyError(f"read_ahead {sectors!r} is not a sector count", "use 0, 256, 4096 ...")
    return ["blockdev", "--setra", str(int(sectors)), device_path(name)]


def scheduler_file(name: str, root: Path = SYS_BLOCK) -> Path:
    """``/sys/block/NAME/queue/scheduler``."""
    return root / Path(device_path(name)).name / "queue" / "scheduler"


def parse_scheduler(text: str) -> tuple[str, list[str]]:
    """``(active, available)`` from the scheduler file, e.g. ``"mq-deadline kyber [bfq] none"``."""
    names = text.split()
    active = [n[1:-1] for n in names if n.startswith("[") and n.endswith("]")]
    if not active:
        raise ApplyError(f"no active scheduler in {text.strip()!r}", "check the device")
    return active[0], [n.strip("[]") for n in names]


def set_scheduler(path: Path, value: str) -> None:
    """Write a scheduler name, refusing one the device does not offer."""
    _, available = parse_scheduler(path.read_text())
    if value not in available:
        raise ApplyError(f"scheduler {value!r} is not offered by {path}", f"use one of {', '.join(available)}")
    path.write_text(value)


def undo_read_ahead(entry: LedgerEntry) -> str:
    """Put a device's read-ahead back."""
    run_tool(setra_argv(entry.undo["device"], entry.undo["sectors"]))
    return f"read-ahead of {entry.undo['device']} back to {entry.undo['sectors']} sectors"


def undo_scheduler(entry: LedgerEntry) -> str:
    """Put a device's I/O scheduler back."""
    set_scheduler(Path(entry.undo["path"]), entry.undo["value"])
    return f"scheduler of {entry.target} back to {entry.undo['value']}"
