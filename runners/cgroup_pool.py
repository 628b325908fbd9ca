"""A small pool of run cgroups, reused from one run to the next by one runner.

Making and removing a cgroup costs a ``mkdir`` and an ``rmdir`` per controller (three on a v1 machine
with separate ``pids``, ``cpuacct`` and ``memory`` hierarchies) for every run. The pool keeps the
cgroups of finished runs instead: one whose process list is empty after its run is handed to the next
run. Each run starts with ``Cgroup.begin`` (CPU counters remembered, so a run reports its own CPU time;
the memory peak reset, so it reports its own peak); a cgroup whose peak cannot be reset is removed and a
fresh one made. The idle cgroups are removed by ``close`` and at interpreter exit; those a ``kill -9``
leaves behind are removed by ``sweep_dead_owners``, called from ``reap_leftovers`` on the next start.

Pool folders are named ``<owner pid>-<random>`` under ``tunesmith`` in the owner's own cgroups.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
import weakref
from pathlib import Path

import psutil

from .containment import CGROUP_ROOT, V1_CONTROLLERS, Cgroup, _own_cgroups

MAX_IDLE = 4  # idle cgroups kept per runner (one per concurrent run is enough)


_SETTLE_S = 0.5  # how long a finished run's cgroup may take to empty before it is removed, not reused

class CgroupPool:
    """The cgroups one runner reuses across its runs; thread-safe, per process (a fork starts empty)."""

    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: list[Cgroup] = []
        self._final = weakref.finalize(self, _drain, self._idle, self._pid)
        self.made = 0  # cgroups created (a measure of reuse)

    def acquire(self) -> Cgroup | None:
        """A cgroup ready for a run (reused where possible, else new); None where none can be made."""
        with self._lock:
            if os.getpid() != self._pid:  # a forked worker: the idle cgroups are its parent's
                self._pid, self._idle = os.getpid(), []
                self._final.detach()
                self._final = weakref.finalize(self, _drain, self._idle, self._pid)
            while self._idle:
                group = self._idle.pop()
                if not group.pids() and group.begin():
                    return group
                group.kill()
                group.remove()
        group = Cgroup.create(f"{os.getpid()}-{secrets.token_hex(6)}")
        if group is None:
            return None
        self.made += 1
        group.begin()  # a fresh cgroup's counters are this run's own even where the peak cannot be reset
        return group

    def release(self, group: Cgroup) -> None:
        """Take back the cgroup of a finished run: kept if empty and room is left, else removed."""
        group.kill()
        end = time.monotonic() + _SETTLE_S
        while group.pids() and time.monotonic() < end:
            time.sleep(0.005)  # killed members are zombies until their parent reaps them: give it a moment
        with self._lock:
            keep = os.getpid() == self._pid and len(self._idle) < self.max_idle and not group.pids()
            if keep:
                self._idle.append(group)
        if not keep:
            group.remove()

    def close(self) -> None:
        """Remove every idle cgroup."""
        with self._lock:
            _drain(self._idle, self._pid)


def _drain(idle: list[Cgroup], owner: int) -> None:
    if os.getpid() != owner:
        return  # a forked child exiting: the cgroups belong to its parent
    while idle:
        group = idle.pop()
        group.kill()
        group.remove()


def sweep_dead_owners(root: Path = CGROUP_ROOT) -> int:
    """Remove the run cgroups of tunesmith processes that no longer exist (killing any member); how many."""
    own = _own_cgroups()
    if (root / "cgroup.controllers").exists():
        bases = {"v2": root / own.get("", "/").lstrip("/") / "tunesmith"}
    else:
        bases = {c: root / c / own[c].lstrip("/") / "tunesmith" for c in V1_CONTROLLERS if c in own}
    by_name: dict[str, dict[str, Path]] = {}
    for controller, base in bases.items():
        with contextlib.suppress(OSError):
            for entry in os.scandir(base):
                if entry.is_dir(follow_symlinks=False):
                    by_name.setdefault(entry.name, {})[controller] = Path(entry.path)
    removed = 0
    for name, dirs in by_name.items():
        owner = name.split("-", 1)[0]
        if not owner.isdigit() or int(owner) == os.getpid() or psutil.pid_exists(int(owner)):
            continue  # not a run cgroup, or its tunesmith is alive
        group = Cgroup(dirs)
        group.kill()
        group.remove()
        removed += 1
    return removed
