"""Containment: every process a run starts ends with the run, even after tunesmith itself is killed.

Three layers, each used where the machine allows it:

- **cgroup** (Linux, writable cgroup file system, usually root): each run gets its own cgroup, joined
  by the child before it executes the workload, so every descendant (``setsid``, double fork, a
  launcher's workers) is a member and can be listed and killed. On a v1 hierarchy the ``pids``,
  ``cpuacct`` and ``memory`` controllers are used (created under tunesmith's own cgroup of each
  controller); on a pure v2 hierarchy one folder under tunesmith's own cgroup.
- **child subreaper** (``prctl(PR_SET_CHILD_SUBREAPER)``, no privilege needed): orphaned descendants
  re-parent to tunesmith instead of init, so they stay findable; each run's processes also carry a
  ``TUNESMITH_RUN_TOKEN`` in their environment, which tells whose they are.
- **parent-death signal** (``PR_SET_PDEATHSIG`` = SIGKILL, armed in the child before the workload
  executes): a ``kill -9`` of tunesmith takes the direct child down at once.

How the child arms the signal and joins the cgroup without running Python code between fork and exec
(util-linux ``setpriv`` and a few lines of ``sh``) is in ``spawn``; ``child_setup`` is the fallback
``preexec_fn`` for machines without ``setpriv --pdeathsig``.

Each live run is recorded in ``<scratch>/running/<tunesmith pid>.json`` (leader pid and start time, token,
cgroup folders); ``reap_leftovers`` ends whatever a killed tunesmith left there. A runner reuses its
cgroups from run to run (``cgroup_pool``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

TOKEN_ENV = "TUNESMITH_RUN_TOKEN"
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("pids", "cpuacct", "memory")
_KILL_ROUNDS_S = 5.0
_LEFTOVER_BYTES = 1 << 20  # memory an earlier run may leave charged (page cache) in a reused cgroup

_libc: ctypes.CDLL | None = None
_subreaper: bool | None = None


def _prctl(option: int, arg: int) -> bool:
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        except OSError:
            return False
    try:
        return _libc.prctl(option, arg, 0, 0, 0) == 0
    except AttributeError:  # not Linux
        return False


def enable_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (once); whether that worked."""
    global _subreaper
    if _subreaper is None:
        _subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    return _subreaper


def child_setup(procs_files: list[str]) -> Callable[[], None]:
    """A ``preexec_fn``: die with the parent, join the run's cgroups (failures are checked by the parent).

    Used only where ``spawn.launcher`` is unavailable: a ``preexec_fn`` makes the spawn a full fork.
    """
    parent = os.getpid()
    _prctl(PR_SET_PDEATHSIG, 0)  # loads libc now, in the parent, so the child calls nothing new

    def setup() -> None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(137)
        for path in procs_files:
            try:
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.write(fd, b"0")  # "0": the writing process itself
                finally:
                    os.close(fd)
            except OSError:
                pass

    return setup


def _own_cgroups() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(","):
                out[c] = path
    return out


class Cgroup:
    """One run's cgroup: its folders (one per v1 controller, or a single v2 folder), members and counters."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs  # controller name ("pids", "cpuacct", "memory", or "v2") -> folder
        self.proven = False  # a process was seen to join it: later runs trust the launcher's own join
        self._base: dict[str, float] = {}  # CPU counters at the start of the current run
        self._base_total = 0  # cpuacct.usage (ns) at the start of the current run

    @classmethod
    def create(cls, name: str, root: Path = CGROUP_ROOT) -> Cgroup | None:
        """Make the run's cgroup under this process's own cgroups; None where that is not possible."""
        own = _own_cgroups()
        dirs: dict[str, Path] = {}
        if (root / "cgroup.controllers").exists():  # pure v2
            candidates = {"v2": root / own.get("", "/").lstrip("/") / "tunesmith" / name}
        else:
            candidates = {c: root / c / own[c].lstrip("/") / "tunesmith" / name for c in V1_CONTROLLERS if c in own}
        for controller, path in candidates.items():
            try:
                path.mkdir(parents=True, exist_ok=True)
                dirs[controller] = path
            except OSError:
                continue
        group = cls(dirs)
        if not any(c in dirs for c in ("pids", "v2")):  # nothing to hold the members: no cgroup at all
            group.remove()
            return None
        return group

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    @property
    def member_dir(self) -> Path:
        return self.dirs.get("pids") or self.dirs["v2"]

    def pids(self) -> set[int]:
        """Processes in the cgroup now (an empty set once it is gone)."""
        try:
            text = (self.member_dir / "cgroup.procs").read_text()
        except (OSError, KeyError):
            return set()
        return {int(x) for x in text.split()}

    def contains(self, pid: int) -> bool:
        return pid in self.pids()

    def join(self, pid: int) -> None:
        """Move ``pid`` into the cgroup from the parent (a failure is seen by ``contains``)."""
        data = str(pid).encode()
        for path in self.procs_files:
            _write(Path(path), data)

    def admit(self, pid: int) -> bool:
        """Whether the just-started child ``pid`` is a member, joining it from here only where needed.

        A cgroup that a child has joined before is trusted (the launcher joins by itself before the
        workload starts); otherwise a member check, and a join from the parent only if the child has
        not joined yet (the launcher may still be on its way).
        """
        if self.proven:
            return True
        if not self.contains(pid):
            self.join(pid)
            if not self.contains(pid) and not self._used():  # a quick child may be gone already
                return False
        self.proven = True
        return True

    def _used(self) -> bool:
        """Whether anything ran in the cgroup since ``begin``: its CPU counters moved, or memory was charged.

        cgroup v1 splits user and system time from scheduler ticks, so a process shorter than a tick may
        move neither; the total (``cpuacct.usage``, nanoseconds) and the memory peak (reset by ``begin``) do.
        """
        cpu = self._cpu()
        if cpu and sum(cpu.values()) > sum(self._base.values()):
            return True
        if "cpuacct" in self.dirs and (total := _read_int(self.dirs["cpuacct"] / "cpuacct.usage")) is not None:
            if total > self._base_total:
                return True
        return "memory" in self.dirs and bool(_read_int(self.dirs["memory"] / "memory.max_usage_in_bytes"))

    def kill(self) -> None:
        """SIGKILL every member until none is left (or a few seconds passed); zombies count as gone."""
        end = time.monotonic() + _KILL_ROUNDS_S
        while time.monotonic() < end:
            live = [p for p in self.pids() if not _is_zombie(p)]
            if not live:
                return
            for pid in live:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def _cpu(self) -> dict[str, float]:
        """The cumulative CPU counters (cpu_user_s, cpu_system_s) since the cgroup was made."""
        if "cpuacct" in self.dirs:
            user = _read_int(self.dirs["cpuacct"] / "cpuacct.usage_user")
            system = _read_int(self.dirs["cpuacct"] / "cpuacct.usage_sys")
            if user is not None and system is not None:
                return {"cpu_user_s": user / 1e9, "cpu_system_s": system / 1e9}
        if "v2" in self.dirs:
            stat = _read_keyed(self.dirs["v2"] / "cpu.stat")
            if "user_usec" in stat and "system_usec" in stat:
                return {"cpu_user_s": stat["user_usec"] / 1e6, "cpu_system_s": stat["system_usec"] / 1e6}
        return {}

    def begin(self) -> bool:
        """Start a run in this cgroup: remember the CPU counters, reset the memory peak.

        False when the peak cannot be reset to this run's own (v2 without a writable peak, or more than
        ``_LEFTOVER_BYTES`` still charged from an earlier run): the caller then uses a fresh cgroup.
        """
        if "memory" in self.dirs:
            mem = self.dirs["memory"]
            used = _read_int(mem / "memory.usage_in_bytes")
            if used is None or used > _LEFTOVER_BYTES or not _write(mem / "memory.max_usage_in_bytes", b"0"):
                return False
        if "v2" in self.dirs and (self.dirs["v2"] / "memory.peak").exists():
            used = _read_int(self.dirs["v2"] / "memory.current")
            if used is None or used > _LEFTOVER_BYTES or not _write(self.dirs["v2"] / "memory.peak", b"0"):
                return False
        self._base = self._cpu()
        total = _read_int(self.dirs["cpuacct"] / "cpuacct.usage") if "cpuacct" in self.dirs else None
        self._base_total = total or 0
        return True

    def counters(self) -> dict[str, float]:
        """This run's cpu_user_s, cpu_system_s and peak_charged_mb (memory cgroup: RSS + page cache).

        CPU is the counters' growth since ``begin``; none is reported when they did not move at all (nothing
        ran in the cgroup, so the caller's own accounting is used instead).
        """
        out: dict[str, float] = {}
        cpu = self._cpu()
        if cpu:
            delta = {k: v - self._base.get(k, 0.0) for k, v in cpu.items()}
            if delta["cpu_user_s"] + delta["cpu_system_s"] > 0:
                out.update(delta)
        read = _read_int
        if "memory" in self.dirs and (peak := read(self.dirs["memory"] / "memory.max_usage_in_bytes")) is not None:
            out["peak_charged_mb"] = peak / 2**20
        if "v2" in self.dirs and (peak := read(self.dirs["v2"] / "memory.peak")) is not None:
            out["peak_charged_mb"] = peak / 2**20
        return out

    def remove(self) -> None:
        """Remove the folders (members must be gone; a folder that is still busy is left)."""
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                path.rmdir()


def _write(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_keyed(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
    return out


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def carries_token(proc: psutil.Process, token: str) -> bool:
    """Whether ``proc``'s environment holds this run's token (False where it cannot be read)."""
    try:
        return proc.environ().get(TOKEN_ENV) == token
    except (psutil.Error, OSError):
        return False


def token_holders(token: str, *, everywhere: bool) -> list[psutil.Process]:
    """Live processes carrying ``token``: among our descendants, or (``everywhere``) on the whole machine."""
    if everywhere:
        procs = list(psutil.process_iter())
    else:
        try:
            procs = psutil.Process().children(recursive=True)
        except psutil.Error:
            procs = []
    me = os.getpid()
    return [p for p in procs if p.pid != me and carries_token(p, token) and not _is_zombie(p.pid)]


class RunRecords:
    """The live runs of this tunesmith process, kept in ``<scratch>/running/<pid>.json`` for ``reap_leftovers``.

    The file is rewritten in place (one ``pwrite`` from offset 0, padded with spaces to its previous
    length, which JSON ignores) rather than written aside and renamed: no directory change per run, which
    on a busy journaled file system costs milliseconds. A kill cannot tear a ``pwrite``; a reader that
    catches one half-done finds bad JSON and leaves a live owner's file alone (see ``reap_leftovers``).
    ``close`` removes the file; one left by a killed process is removed by the next ``reap_leftovers``.
    """

    def __init__(self, scratch: Path) -> None:
        self.folder = Path(scratch) / "running"
        self.runs: dict[str, dict[str, object]] = {}
        self._lock = threading.Lock()  # runs may go on in several threads at once
        self._fd: int | None = None
        self._fd_pid = 0  # the process that opened _fd (a forked worker opens its own file)
        self._size = 0  # bytes in the file now

    @property
    def path(self) -> Path:
        return self.folder / f"{os.getpid()}.json"  # per process: a forked worker keeps its own file

    def add(self, token: str, **fields: object) -> None:
        """Record (or update) the run ``token``: ``pid``, ``create_time``, ``cgroups``."""
        with self._lock:
            self.runs.setdefault(token, {}).update(fields)
            self._write()

    def remove(self, token: str) -> None:
        with self._lock:
            if self.runs.pop(token, None) is not None:
                self._write()

    def close(self) -> None:
        """Remove this process's file (no run is live any more)."""
        with self._lock:
            self.runs.clear()
            if self._fd is not None and self._fd_pid == os.getpid():
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self.path.unlink(missing_ok=True)
            self._fd, self._size = None, 0

    def _open(self) -> int:
        if self._fd is None or self._fd_pid != os.getpid():
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._fd_pid, self._size = os.getpid(), os.fstat(self._fd).st_size
        return self._fd

    def _write(self) -> None:
        with contextlib.suppress(OSError, TypeError, ValueError, psutil.Error):
            data = json.dumps({"owner": _owner(), "runs": self.runs}).encode()
            fd = self._open()
            os.pwrite(fd, data.ljust(self._size), 0)
            self._size = max(self._size, len(data))


_owners: dict[int, dict[str, object]] = {}


def _owner() -> dict[str, object]:
    """This process's pid and start time (read once per process: a forked worker has its own)."""
    pid = os.getpid()
    if pid not in _owners:
        _owners[pid] = {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    return _owners[pid]


def _same_process(pid: object, create_time: object) -> psutil.Process | None:
    if not isinstance(pid, int) or not isinstance(create_time, (int, float)):
        return None
    try:
        proc = psutil.Process(pid)
        return proc if abs(proc.create_time() - create_time) < 0.01 else None
    except psutil.Error:
        return None


def reap_leftovers(scratch: Path) -> int:
    """Kill what runs of a killed tunesmith left behind under ``scratch``; returns how many processes ended.

    A record whose tunesmith is still alive (another study using the same state folder) is left alone. For
    each recorded run: its leader (if the same process is still there), every member of its cgroups and
    every process on the machine carrying its token are killed, then the cgroups are removed.
    """
    killed = 0
    for record in sorted((Path(scratch) / "running").glob("*.json")):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            owner, runs = data["owner"], dict(data["runs"])
        except (OSError, ValueError, KeyError, TypeError):
            if not (record.stem.isdigit() and int(record.stem) != os.getpid() and psutil.pid_exists(int(record.stem))):
                record.unlink(missing_ok=True)  # unreadable, and its writer is gone (a live one may be mid-write)
            continue
        if owner.get("pid") != os.getpid() and _same_process(owner.get("pid"), owner.get("create_time")):
            continue  # a live tunesmith's own runs
        for token, run in runs.items():
            victims = {p.pid: p for p in token_holders(str(token), everywhere=True)}
            if (leader := _same_process(run.get("pid"), run.get("create_time"))) is not None:
                victims[leader.pid] = leader
            dirs = run.get("cgroups") or {}
            group = Cgroup({str(k): Path(v) for k, v in dirs.items()}) if isinstance(dirs, dict) and dirs else None
            for pid in group.pids() if group is not None else ():
                with contextlib.suppress(psutil.Error):
                    victims.setdefault(pid, psutil.Process(pid))
            for proc in victims.values():
                with contextlib.suppress(psutil.Error):
                    proc.kill()
                    killed += 1
            if group is not None:
                group.kill()
                group.remove()
            psutil.wait_procs(list(victims.values()), timeout=_KILL_ROUNDS_S)
        record.unlink(missing_ok=True)
    from .cgroup_pool import sweep_dead_owners  # the pool builds on this module

    sweep_dead_owners()  # idle pooled cgroups of a killed tunesmith (no run record names them)
    return killed

