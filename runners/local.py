"""The local runner: one subprocess per RunSpec, in its own session, with hard limits.

The parent owns every limit. The child runs in a new session (its own process group); a timeout, a
memory overrun, a scheduler's stop or an exception in the parent kills that group and every other
group its descendants were seen in (torchrun puts each worker in a session of its own), grandchildren
included. Memory is watched by polling the summed RSS of the process tree (``psutil``) rather than by
``RLIMIT_AS``: CUDA builds of torch reserve far more virtual memory than they use, so an address-space
limit would break ``import torch`` while an RSS limit measures what the candidate really holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import psutil

from .base import REPORT_PREFIX, RESULT_ENV, Runner, RunResult, RunSpec

TAIL_CHARS = 8000  # characters of stdout and of stderr kept in a RunResult
_MAX_LINE = 1 << 16  # read at most this many bytes per line, so a newline-free flood cannot exhaust memory
_KILL_WAIT_S = 5.0  # how long to wait for SIGKILLed processes to disappear
_READER_JOIN_S = 5.0  # how long to wait for the output pipes to drain after the group is gone


class _Tail:
    """The last ``limit`` characters of a stream; one reader thread writes, ``text`` is read after it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.text = ""

    def add(self, chunk: str) -> None:
        self.text = (self.text + chunk)[-self.limit :]


def _pump(stream: IO[bytes], tail: _Tail, on_line: Callable[[str], None] | None) -> None:
    for raw in iter(lambda: stream.readline(_MAX_LINE), b""):
        line = raw.decode("utf-8", errors="replace")
        tail.add(line)
        if on_line is not None:
            on_line(line)


class ProcessTree:
    """The processes of one run: the leader, every descendant seen so far and the groups they live in.

    Launchers such as torchrun start each worker in a session of its own, so killing the leader's group
    alone would miss the workers and their children. The tree remembers every descendant it has
    observed (psutil objects, so a reused pid is never mistaken for one of ours) and every process group
    among them, and ``kill`` signals all of them. Zombies waiting for a reaper count as gone.
    """

    def __init__(self, proc: subprocess.Popen[Any]) -> None:
        self.proc = proc
        self.seen: dict[int, psutil.Process] = {}
        self.groups: set[int] = {proc.pid}  # start_new_session=True: the leader leads its own group
        self._own_group = os.getpgid(0)

    def observe(self) -> list[psutil.Process]:
        """The live tree now (leader and descendants); remembers each member and its group."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        for p in procs:
            self.seen.setdefault(p.pid, p)
            try:
                group = os.getpgid(p.pid)
            except OSError:
                continue
            if group != self._own_group:
                self.groups.add(group)
        return procs

    def rss_bytes(self) -> int:
        """Summed resident memory of the live tree (shared pages are counted once per process)."""
        total = 0
        for p in self.observe():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _live_members(self) -> list[psutil.Process]:
        self.proc.poll()  # reap the leader so its zombie does not count
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

    def alive(self) -> bool:
        """Whether any remembered member or any process in a remembered group is still running."""
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

    def kill(self, grace_s: float = 2.0) -> None:
        """SIGTERM everything, wait up to ``grace_s``, SIGKILL what is left, wait until it is gone.

        SIGKILL is sent even if the grace wait is interrupted (a second Ctrl-C), and the leader is
        always reaped, so nothing of the run outlives the call.
        """
        try:
            self.observe()
            if not self.alive():
                return
            self.signal(signal.SIGTERM)
            self._wait(grace_s)
        finally:
            if self.alive():
                self.signal(signal.SIGKILL)
                self._wait(_KILL_WAIT_S)
            self.proc.wait()


def _launch_error(argv: list[str], exc: BaseException) -> str:
    exe = argv[0] if argv else ""
    if isinstance(exc, FileNotFoundError):
        return f"cannot start {exe!r}: no such file or directory; fix: install it or give its full path"
    if isinstance(exc, PermissionError):
        return f"cannot start {exe!r}: permission denied; fix: make it executable or run it through its interpreter"
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot start {exe!r}: {reason}; fix: check the command and its interpreter line"


class _Reports:
    """Parses report lines from stdout, calls ``on_report`` and raises the stop flag when asked."""

    def __init__(self, on_report: Callable[[dict[str, Any]], bool] | None, stop: threading.Event) -> None:
        self.on_report = on_report
        self.stop = stop
        self.items: list[dict[str, Any]] = []
        self.callback_error: BaseException | None = None

    def __call__(self, line: str) -> None:
        if not line.startswith(REPORT_PREFIX) or self.stop.is_set():
            return  # nothing is passed on once a stop was asked for
        try:
            payload = json.loads(line[len(REPORT_PREFIX) :])
        except json.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            return  # an ordinary output line after all
        self.items.append(payload)
        try:
            keep = self.on_report(payload) if self.on_report is not None else True
        except BaseException as exc:  # noqa: BLE001 - re-raised in the parent thread after cleanup
            self.callback_error, keep = exc, False
        if keep is False:
            self.stop.set()


class LocalRunner(Runner):
    """Runs each RunSpec as a local subprocess with a wall-time limit, a memory watchdog and live reports.

    ``grace_s`` is the time between SIGTERM and SIGKILL when a run is stopped; ``poll_s`` is how often
    the watchdog checks the clock and the tree's memory. Leftover processes of a finished run (a
    background grandchild) are killed with the group, so nothing outlives its run. A stale
    ``result.json`` in the scratch folder is removed before the run starts.
    """

    name = "local"

    def __init__(self, *, grace_s: float = 2.0, poll_s: float = 0.1, tail_chars: int = TAIL_CHARS) -> None:
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.tail_chars = tail_chars

    def environment(self, spec: RunSpec) -> dict[str, str]:
        """The child's environment: ours, unbuffered Python output, the spec's additions, the result path."""
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")  # reports must arrive while the run is going
        env.update(spec.env)
        env[RESULT_ENV] = str(spec.result_path)
        return env

    def run(self, spec: RunSpec) -> RunResult:
        if not spec.argv:
            return RunResult(returncode=None, launch_error="empty command; fix: give the command to run")
        try:
            spec.cwd.mkdir(parents=True, exist_ok=True)
            spec.result_path.unlink(missing_ok=True)
        except OSError as exc:
            why = f"cannot prepare scratch folder {str(spec.cwd)!r}: {exc.strerror or exc}"
            return RunResult(returncode=None, launch_error=f"{why}; fix: choose a writable work folder")
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                spec.argv,
                cwd=spec.cwd,
                env=self.environment(spec),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            return RunResult(returncode=None, launch_error=_launch_error(spec.argv, exc))
        return self._supervise(proc, spec, start)

    def _supervise(self, proc: subprocess.Popen[bytes], spec: RunSpec, start: float) -> RunResult:
        stop = threading.Event()
        reports = _Reports(spec.on_report, stop)
        out, err = _Tail(self.tail_chars), _Tail(self.tail_chars)
        readers = [
            threading.Thread(target=_pump, args=(proc.stdout, out, reports), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, err, None), daemon=True),
        ]
        tree = ProcessTree(proc)
        limit = spec.memory_mb * 2**20 if spec.memory_mb else None
        deadline = start + spec.timeout_s
        reason = ""
        try:
            for t in readers:
                t.start()
            while proc.poll() is None:
                if stop.is_set():
                    reason = "stop"
                    break
                now = time.monotonic()
                if now >= deadline:
                    reason = "timeout"
                    break
                rss = tree.rss_bytes()  # also remembers new members (workers in sessions of their own)
                if limit is not None and rss > limit:
                    reason = "memory"
                    break
                stop.wait(min(self.poll_s, max(deadline - now, 0.001)))
        finally:
            # Always: kill what is over its limit, leftovers of a finished run, or everything if we raise.
            tree.kill(self.grace_s)
            for t in readers:
                if t.is_alive():
                    t.join(_READER_JOIN_S)
        wall = time.monotonic() - start
        if reports.callback_error is not None:
            raise reports.callback_error
        result, note = _read_result(spec)
        return RunResult(
            returncode=proc.returncode,
            timed_out=reason == "timeout",
            memory_exceeded=reason == "memory",
            stopped_early=reason == "stop",
            wall_s=wall,
            stdout_tail=out.text,
            stderr_tail=(err.text + note)[-self.tail_chars :],
            result=result,
            reports=reports.items,
        )


def _read_result(spec: RunSpec) -> tuple[dict[str, Any] | None, str]:
    """The workload's result JSON and, if it could not be used, a one-line note for the stderr tail."""
    path = spec.result_path
    if not path.is_file():
        return None, ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"\n[tunesmith] {path.name} is not valid JSON ({exc}); result ignored\n"
    if not isinstance(data, dict):
        return None, f"\n[tunesmith] {path.name} is a JSON {type(data).__name__}, not an object; ignored\n"
    return data, ""
