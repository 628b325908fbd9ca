"""The local runner: one subprocess per RunSpec, in its own session, with hard limits, contained.

The parent owns every limit. The child runs in a new session (its own process group) with a
parent-death signal armed before the workload executes, and joins a cgroup of its own where the machine
allows (see ``containment``: with util-linux ``setpriv`` no Python runs in the child, so a spawn costs
a vfork/exec even when tunesmith has imported torch); tunesmith is the child subreaper, so orphaned
descendants (``setsid``, double forks) re-parent to it. The parent waits on the child's pidfd (so a run
that ends is seen at once, not at the next poll) and checks the clock and memory every ``poll_s``. A timeout, a memory overrun, a scheduler's stop, an exception in the
parent or the end of the run kills every member: the cgroup, every group its descendants were seen in
(torchrun puts each worker in a session of its own) and every process carrying the run's token.
Memory is watched by polling the summed RSS of the process tree (``psutil``) rather than by
``RLIMIT_AS``: CUDA builds of torch reserve far more virtual memory than they use, so an address-space
limit would break ``import torch`` while an RSS limit measures what the candidate really holds.

The child's environment is ours without secret variables (API keys, tokens; see ``secrets``) unless the
job passes them (``[runner] env`` or ``pass_env``). Report lines are bounded in memory: the latest
``max_reports`` (and at most ``max_report_bytes`` of their text) are kept, older ones counted as dropped.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from . import secrets as _secrets
from .base import REPORT_PREFIX, RESULT_ENV, Runner, RunResult, RunSpec
from .cgroup_pool import CgroupPool
from .containment import (
    TOKEN_ENV,
    Cgroup,
    RunRecords,
    child_setup,
    enable_subreaper,
)
from .job import Job as JobConfig
from .process_tree import ProcessTree, exited
from .pumps import PUMPS, Job
from .secrets import register_secret_name, scrubbed_env
from .spawn import ExitWaiter, check_program, launch_argv, launch_error, launcher, launcher_exec_error

TAIL_CHARS = 8000  # characters of stdout and of stderr kept in a RunResult
_MAX_LINE = 1 << 16  # read at most this many bytes per line, so a newline-free flood cannot exhaust memory
_READER_JOIN_S = 5.0  # how long to wait for the output pipes to drain after the group is gone
MAX_REPORTS = 1000  # parsed report lines kept per run (the latest)
MAX_REPORT_BYTES = 1 << 20  # and at most this much report text


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


class _Reports:
    """Parses report lines from stdout, calls ``on_report``, raises the stop flag when asked; keeps the latest.

    At most ``max_items`` reports and ``max_bytes`` of their line text are kept; older ones are dropped
    and counted (``on_report`` still sees every one).
    """

    def __init__(self, on_report: Callable[[dict[str, Any]], bool] | None, stop: threading.Event,
                 max_items: int = MAX_REPORTS, max_bytes: int = MAX_REPORT_BYTES,
                 wake: Callable[[], None] | None = None) -> None:
        self.on_report = on_report
        self.stop = stop
        self.wake = wake
        self.max_items, self.max_bytes = max_items, max_bytes
        self.kept: deque[tuple[int, dict[str, Any]]] = deque()
        self.kept_bytes = 0
        self.dropped = 0
        self.callback_error: BaseException | None = None

    @property
    def items(self) -> list[dict[str, Any]]:
        return [payload for _, payload in self.kept]

    def __call__(self, line: str) -> None:
        if not line.startswith(REPORT_PREFIX) or self.stop.is_set():
            return  # nothing is passed on once a stop was asked for
        try:
            payload = json.loads(line[len(REPORT_PREFIX) :])
        except json.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            return  # an ordinary output line after all
        self.kept.append((len(line), payload))
        self.kept_bytes += len(line)
        while len(self.kept) > self.max_items or (self.kept_bytes > self.max_bytes and len(self.kept) > 1):
            self.kept_bytes -= self.kept.popleft()[0]
            self.dropped += 1
        try:
            keep = self.on_report(payload) if self.on_report is not None else True
        except BaseException as exc:  # noqa: BLE001 - re-raised in the parent thread after cleanup
            self.callback_error, keep = exc, False
        if keep is False:
            self.stop.set()
            if self.wake is not None:
                self.wake()


class LocalRunner(Runner):
    """Runs each RunSpec as a local, contained subprocess with a wall-time limit, a memory watchdog and reports.

    ``grace_s`` is the time between SIGTERM and SIGKILL when a run is stopped; ``poll_s`` is how often
    the watchdog checks the clock and the tree's memory; ``cgroups=False`` skips the cgroup even where
    one could be made. Leftover processes of a finished run (a background grandchild, a daemon that
    called ``setsid``) are killed, so nothing outlives its run. A stale ``result.json`` in the scratch
    folder is removed before the run starts.

    ``RunResult.resources`` holds, for the whole process tree: ``cpu_user_s`` and ``cpu_system_s`` (the
    cgroup's CPU counters, else the rusage of every reaped process), ``peak_rss_mb`` (the larger of the
    summed RSS seen at each poll and the largest single-process peak RSS), ``read_bytes`` and
    ``write_bytes`` (bytes the tree made the kernel read from / send to storage, from ``/proc/PID/io``;
    absent where unreadable) and, with a memory cgroup, ``peak_charged_mb`` (peak memory charged to the
    cgroup, page cache included).
    """

    name = "local"

    def __init__(self, *, grace_s: float = 2.0, poll_s: float = 0.1, tail_chars: int = TAIL_CHARS,
                 cgroups: bool = True, max_reports: int = MAX_REPORTS, max_report_bytes: int = MAX_REPORT_BYTES) -> None:
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.tail_chars = tail_chars
        self.cgroups = cgroups
        self.max_reports, self.max_report_bytes = max_reports, max_report_bytes
        self.pass_env: list[str] = []
        self.records: RunRecords | None = None
        self.pool = CgroupPool()  # the runs' cgroups, reused from run to run
        self._base_env: tuple[Any, dict[str, str]] | None = None  # (what it was built from, scrubbed environ)

    def close(self) -> None:
        """Remove the cgroups kept for later runs (also done at interpreter exit) and the live-run record."""
        self.pool.close()
        if self.records is not None:
            self.records.close()

    def attach(self, job: JobConfig, scratch: Path) -> None:
        """Pass the job's ``pass_env`` secrets to workloads; record live runs under ``scratch`` for a later reap."""
        self.pass_env = list(job.runner.pass_env)
        register_secret_name(job.llm.api_key_env)
        self.records = RunRecords(scratch)

    def environment(self, spec: RunSpec) -> dict[str, str]:
        """The child's environment: ours without secrets (unless passed), unbuffered output, the spec's additions.

        The scrubbed copy of our own environment is kept until a variable changes, a secret (or secret
        name) is registered or ``pass_env`` changes: scrubbing checks every variable's name and value.
        """
        key = (_secrets._generation, _secrets._environ_state(), tuple(self.pass_env))
        if self._base_env is None or self._base_env[0] != key:
            base = scrubbed_env(os.environ, self.pass_env)
            base.setdefault("PYTHONUNBUFFERED", "1")  # reports must arrive while the run is going
            self._base_env = (key, base)
        env = dict(self._base_env[1])
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
        token = secrets.token_hex(8)
        enable_subreaper()
        cgroup = self.pool.acquire() if self.cgroups else None
        env = {**self.environment(spec), TOKEN_ENV: token}
        if self.records is not None:  # written once: the token and the cgroup find the leader and its tree
            self.records.add(token, cgroups={k: str(v) for k, v in cgroup.dirs.items()} if cgroup else {})
        prefix = launcher()
        procs_files = cgroup.procs_files if cgroup else []
        start = time.monotonic()
        try:
            if prefix is not None:
                check_program(spec.argv[0], spec.cwd, env)
            proc = subprocess.Popen(
                launch_argv(prefix, spec.argv, procs_files) if prefix is not None else spec.argv,
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=None if prefix is not None else child_setup(procs_files),
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self._forget(token, cgroup)
            return RunResult(returncode=None, launch_error=launch_error(spec.argv, exc))
        try:
            if cgroup is not None and not cgroup.admit(proc.pid):  # the child joins by itself before the exec
                cgroup.remove()  # the child could not join it: the subreaper and the token hold the tree
                cgroup = None
            result = self._supervise(proc, spec, start, ProcessTree(proc, cgroup=cgroup, token=token))
        finally:
            self._forget(token, cgroup)
        if prefix is not None and (why := launcher_exec_error(spec.argv, result.returncode, result.stderr_tail)):
            return RunResult(returncode=None, launch_error=why, wall_s=result.wall_s)
        return result

    def _forget(self, token: str, cgroup: Cgroup | None) -> None:
        if cgroup is not None:
            self.pool.release(cgroup)  # kills what is left; an empty cgroup is kept for the next run
        if self.records is not None:
            self.records.remove(token)

    def _supervise(self, proc: subprocess.Popen[bytes], spec: RunSpec, start: float, tree: ProcessTree) -> RunResult:
        stop = threading.Event()
        waiter = ExitWaiter(proc.pid)
        reports = _Reports(spec.on_report, stop, self.max_reports, self.max_report_bytes, wake=waiter.wake)
        out, err = _Tail(self.tail_chars), _Tail(self.tail_chars)
        pipes = [(proc.stdout, out, reports), (proc.stderr, err, None)]
        readers: list[Job] = []
        limit = spec.memory_mb * 2**20 if spec.memory_mb else None
        deadline = start + spec.timeout_s
        next_check = start + self.poll_s  # the first memory check; a run that ends sooner is never polled
        reason = ""
        try:
            for stream, tail, on_line in pipes:  # long-lived pool threads: no thread start per run
                readers.append(PUMPS.start(lambda a=stream, b=tail, c=on_line: _pump(a, b, c)))
            while not exited(proc.pid):
                if stop.is_set():
                    reason = "stop"
                    break
                now = time.monotonic()
                if now >= deadline:
                    reason = "timeout"
                    break
                if now >= next_check:
                    rss = tree.rss_bytes()  # also remembers new members (workers in sessions of their own)
                    if limit is not None and rss > limit:
                        reason = "memory"
                        break
                    next_check = now + self.poll_s
                waiter.wait(max(min(next_check, deadline) - now, 0.0))
        finally:
            try:
                # Always: kill what is over its limit, leftovers of a finished run, or everything if we raise.
                tree.kill(self.grace_s)
                for t in readers:
                    if t.is_alive():
                        t.join(_READER_JOIN_S)
            finally:
                waiter.close()
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
            reports_dropped=reports.dropped,
            resources=tree.resources(),
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
