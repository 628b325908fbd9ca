"""The processes of one run as one unit: members, their groups, killing them all, reaping and resource use.

Used by the local runner; ``containment`` provides the cgroup, the token and the subreaper it relies on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from .containment import Cgroup, carries_token

_KILL_WAIT_S = 5.0  # how long to wait for SIGKILLed processes to disappear


class _Usage:
    """CPU, peak memory and I/O of the processes this runner reaped (each includes what it reaped itself)."""

    def __init__(self) -> None:
        self.user_s = self.system_s = 0.0
        self.maxrss_kib = 0
        self.read_bytes = self.write_bytes = 0
        self.io_complete = True

    def reap(self, pid: int) -> int | None:
        """Read a zombie's I/O counters, reap it, add its rusage; its wait status (None if not reapable)."""
        io = _zombie_io(pid)
        try:
            done, status, rusage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done == 0:
            return None
        self.user_s += rusage.ru_utime
        self.system_s += rusage.ru_stime
        self.maxrss_kib = max(self.maxrss_kib, rusage.ru_maxrss)
        if io is None:
            self.io_complete = False
        else:
            self.read_bytes += io.get("read_bytes", 0)
            self.write_bytes += io.get("write_bytes", 0)
        return status


def _zombie_io(pid: int) -> dict[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except OSError:
        return None
    return {k: int(v) for k, _, v in (line.partition(": ") for line in text.splitlines()) if v.isdigit()}


def direct_children() -> set[int] | None:
    """This process's own children (every thread's), from /proc; None where the kernel does not list them."""
    if not os.path.exists(f"/proc/self/task/{os.getpid()}/children"):
        return None  # no CONFIG_PROC_CHILDREN (or no /proc)
    out: set[int] = set()
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/children", "rb") as f:
                out.update(int(x) for x in f.read().split())
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        except (OSError, ValueError):
            return None
    return out


def exited(pid: int) -> bool:
    """Whether the child ``pid`` has exited, without reaping it (its counters stay readable)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _live(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class ProcessTree:
    """The processes of one run: the leader, every member seen so far and the groups they live in.

    Members are the leader's descendants, the processes in the run's cgroup (if it has one) and our
    own descendants carrying the run's token (orphans re-parented to us). Launchers such as torchrun
    start each worker in a session of its own, so the tree also remembers every process group among
    them, and ``kill`` signals all of them. psutil objects guard against reused pids. Zombies count as
    gone; the leader and the orphans we inherited are reaped by ``kill`` after their counters are read.
    """

    def __init__(self, proc: subprocess.Popen[Any], *, cgroup: Cgroup | None = None, token: str = "") -> None:
        self.proc = proc
        self.cgroup = cgroup
        self.token = token
        self.seen: dict[int, psutil.Process] = {}
        self.groups: set[int] = {proc.pid}  # start_new_session=True: the leader leads its own group
        self.usage = _Usage()
        self.peak_rss = 0
        self._own_group = os.getpgid(0)
        self._token_of: dict[tuple[int, float], bool] = {}

    def _has_token(self, p: psutil.Process) -> bool:
        """Whether ``p`` carries the run's token (each process's environment is read once)."""
        try:
            key = (p.pid, p.create_time())
        except psutil.Error:
            return False
        if key not in self._token_of:
            self._token_of[key] = carries_token(p, self.token)
        return self._token_of[key]

    def _orphans(self) -> list[psutil.Process]:
        """Our own descendants carrying the run's token (each process's environment is read once)."""
        if not self.token:
            return []
        try:
            mine = psutil.Process().children(recursive=True)
        except psutil.Error:
            return []
        return [p for p in mine if p.pid != self.proc.pid and self._has_token(p)]

    def observe(self) -> list[psutil.Process]:
        """The live tree now (leader and members); remembers each member and its group."""
        procs: dict[int, psutil.Process] = {}
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.proc.pid)
            procs.update((p.pid, p) for p in [root, *root.children(recursive=True)])
        for pid in self.cgroup.pids() if self.cgroup is not None else ():
            with contextlib.suppress(psutil.Error):
                procs.setdefault(pid, self.seen.get(pid) or psutil.Process(pid))
        procs.update((p.pid, p) for p in self._orphans())
        for p in procs.values():
            self.seen.setdefault(p.pid, p)
            try:
                group = os.getpgid(p.pid)
            except OSError:
                continue
            if group != self._own_group:
                self.groups.add(group)
        return list(procs.values())

    def rss_bytes(self) -> int:
        """Summed resident memory of the live tree (shared pages are counted once per process)."""
        total = 0
        for p in self.observe():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)
        return total

    def _live_members(self) -> list[psutil.Process]:
        live = []
        for p in self.seen.values():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    live.append(p)
            except psutil.Error:
                continue
        return live

    def _live_groups(self) -> set[int]:
        live: set[int] = set()
        for pid in psutil.pids():
            try:
                group = os.getpgid(pid)
                if group in self.groups - live and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    live.add(group)
            except (OSError, psutil.Error):
                continue
        return live

    def settled(self) -> bool:
        """Whether the leader has exited and nothing of the run is left, by cheap checks only.

        Once the leader is gone every live descendant has been re-parented to us (the subreaper), so it
        is our own child: the run left nothing when its cgroup has no live member, no remembered member
        runs, and none of our children is in one of the run's groups or carries its token. False when
        unsure (no list of our children here): ``kill`` then looks at the whole machine.
        """
        if not exited(self.proc.pid):
            return False
        if self.cgroup is not None and any(_live(pid) for pid in self.cgroup.pids()):
            return False
        if any(p.pid != self.proc.pid for p in self._live_members()):
            return False
        children = direct_children()
        if children is None:
            return False
        for pid in children - {self.proc.pid}:
            try:
                group = os.getpgid(pid)
            except OSError:
                continue  # gone (reaped meanwhile)
            if group in self.groups:
                if _live(pid):
                    return False
                self.usage.reap(pid)  # an orphan of the run that exited after re-parenting to us
                continue
            with contextlib.suppress(psutil.Error):
                if self.token and self._has_token(psutil.Process(pid)):
                    return False
        return True

    def alive(self) -> bool:
        """Whether any remembered member, any process in a remembered group or in the cgroup still runs."""
        return bool(self._live_members()) or bool(self._live_groups())

    def signal(self, sig: int) -> None:
        """Send ``sig`` to every remembered group and every live member (after a fresh look at the tree)."""
        self.observe()
        for group in self._live_groups():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, sig)
        for p in self._live_members():
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self.alive() and time.monotonic() < end:
            time.sleep(0.02)
            self.observe()

    def kill(self, grace_s: float = 2.0) -> None:
        """SIGTERM everything, wait up to ``grace_s``, SIGKILL what is left, wait until it is gone, reap.

        SIGKILL is sent even if the grace wait is interrupted (a second Ctrl-C), and the leader is
        always reaped, so nothing of the run outlives the call.
        """
        settled = False
        try:
            settled = self.settled()  # a normal end with nothing left: no scan of the machine
            if settled:
                return
            self.observe()
            if not self.alive():
                return
            self.signal(signal.SIGTERM)
            self._wait(grace_s)
        finally:
            try:
                if not settled and self.alive():
                    self.signal(signal.SIGKILL)
                    if self.cgroup is not None:
                        self.cgroup.kill()
                    self._wait(_KILL_WAIT_S)
            finally:
                self._reap()

    def _reap(self) -> None:
        status = self.usage.reap(self.proc.pid)
        if status is not None:
            self.proc.returncode = os.waitstatus_to_exitcode(status)
        else:
            self.proc.wait()  # already reaped elsewhere, or (interrupted) still being killed
        me = os.getpid()
        for p in self.seen.values():
            if p.pid != self.proc.pid:
                with contextlib.suppress(psutil.Error):
                    if p.ppid() == me and p.status() == psutil.STATUS_ZOMBIE:
                        self.usage.reap(p.pid)  # an orphan re-parented to us (we are its subreaper)

    def resources(self) -> dict[str, float]:
        """Resource use of the whole tree; see ``LocalRunner`` for the keys."""
        counters = self.cgroup.counters() if self.cgroup is not None else {}
        u = self.usage
        out = {"cpu_user_s": counters.get("cpu_user_s", u.user_s), "cpu_system_s": counters.get("cpu_system_s", u.system_s),
               "peak_rss_mb": max(self.peak_rss / 2**20, u.maxrss_kib / 1024)}
        if u.io_complete:
            out.update(read_bytes=float(u.read_bytes), write_bytes=float(u.write_bytes))
        if "peak_charged_mb" in counters:
            out["peak_charged_mb"] = counters["peak_charged_mb"]
        return out
