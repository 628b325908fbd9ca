"""A one-brick GlusterFS volume on this machine's loopback, mounted with FUSE, always torn down.

``GlusterVolume(root, name, ledger)`` starts ``glusterd`` if none answers (and stops it again at the end
if it started it and no volume is left), creates a volume with one brick on 127.0.0.2 (glusterd refuses
bricks on 127.0.0.1, and a brick on the root file system needs ``force``), starts it and mounts it at
``root/mnt``. Every step that changes the machine is written to the change ledger first (kinds
``gluster_daemon`` and ``gluster_volume``), so a ``kill -9`` is cleaned up by the next ``restore_all``.
Needs root and the ``glusterfs-server`` package.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil

from ..appliers.gluster import GLUSTER
from ..appliers.shell import ApplyError, is_root, run_tool
from ..changes import ChangeLedger, LedgerEntry
from .juicefs import is_mounted

BRICK_HOST = "127.0.0.2"


def glusterd_answers() -> bool:
    """Whether a glusterd answers the CLI on this machine."""
    if shutil.which("gluster") is None:
        return False
    done = subprocess.run([*GLUSTER, "volume", "list"], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, check=False)
    return done.returncode == 0


def gluster_usable() -> tuple[bool, str]:
    """``(True, "")`` where a volume can be started here, else ``(False, why)``."""
    if shutil.which("glusterd") is None:
        return False, "glusterd is not installed (apt-get install glusterfs-server)"
    if not is_root():
        return False, "glusterd and FUSE mounts need root"
    if not os.path.exists("/dev/fuse"):
        return False, "no /dev/fuse on this machine"
    return True, ""


def volumes() -> list[str]:
    """The volumes glusterd knows."""
    if not glusterd_answers():
        return []
    text = run_tool([*GLUSTER, "volume", "list"])
    return [] if text.startswith("No volumes present") else text.split()


def undo_daemon(entry: LedgerEntry) -> str:
    """Stop the glusterd this project started, unless volumes other than ours are still defined."""
    pid_file = Path(entry.undo["pid_file"])
    left = volumes()
    if left:
        return f"glusterd left running: volumes {', '.join(left)} still defined"
    ours = [proc.pid for proc in psutil.process_iter(["cmdline"])  # the one started with our pid file
            if str(pid_file) in (proc.info["cmdline"] or []) and "glusterd" in " ".join(proc.info["cmdline"][:1])]
    for pid in ours:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    return f"stopped glusterd (pid {ours[0]})" if ours else "glusterd already stopped"


def undo_volume(entry: LedgerEntry) -> str:
    """Unmount, stop and delete a volume, then remove its brick folder."""
    name, root, mp = entry.undo["volume"], Path(entry.undo["root"]), Path(entry.undo["mountpoint"])
    if is_mounted(mp):
        run_tool(["umount", "-l", str(mp)])
    if name in volumes():
        info = run_tool([*GLUSTER, "volume", "info", name])
        if "Status: Started" in info:
            run_tool([*GLUSTER, "volume", "stop", name, "force"], timeout_s=120)
        run_tool([*GLUSTER, "volume", "delete", name], timeout_s=120)
    shutil.rmtree(root, ignore_errors=True)
    return f"gluster volume {name} stopped, deleted and {root} removed"


class GlusterVolume:
    """Context manager: glusterd up, a fresh one-brick volume started and mounted at ``root/mnt``."""

    def __init__(self, root: str | Path, name: str, ledger: ChangeLedger) -> None:
        self.root = Path(root).absolute()
        self.name = name
        self.ledger = ledger
        self.mountpoint = self.root / "mnt"
        self.brick = self.root / "brick"
        self._entries: list[int] = []

    def _start_daemon(self) -> None:
        if glusterd_answers():
            return
        pid_file = self.root / "glusterd.pid"
        self._entries.append(self.ledger.record("gluster_daemon", "glusterd", {"pid_file": str(pid_file)}))
        run_tool(["glusterd", "-p", str(pid_file), f"--log-file={self.root / 'glusterd.log'}"])
        for _ in range(100):
            if glusterd_answers():
                return
            time.sleep(0.1)
        raise ApplyError("glusterd did not answer within 10 s", f"read {self.root / 'glusterd.log'}")

    def __enter__(self) -> GlusterVolume:
        ok, why = gluster_usable()
        if not ok:
            raise ApplyError(f"cannot start GlusterFS here: {why}", "run as root where glusterfs-server is installed")
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._start_daemon()
            if self.name in volumes():
                raise ApplyError(f"gluster volume {self.name} already exists", "pick another name or delete it")
            self._entries.append(self.ledger.record(
                "gluster_volume", self.name,
                {"volume": self.name, "root": str(self.root), "mountpoint": str(self.mountpoint)}))
            self.brick.mkdir(parents=True, exist_ok=True)
            run_tool([*GLUSTER, "volume", "create", self.name, f"{BRICK_HOST}:{self.brick}", "force"], timeout_s=120)
            run_tool([*GLUSTER, "volume", "start", self.name], timeout_s=120)
            self.mountpoint.mkdir(parents=True, exist_ok=True)
            run_tool(["mount", "-t", "glusterfs", f"{BRICK_HOST}:/{self.name}", str(self.mountpoint)], timeout_s=60)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        while self._entries:
            self.ledger.restore(self._entries.pop())
