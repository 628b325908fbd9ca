"""Starting a run's process cheaply and seeing it end at once: helpers of the local runner.

The child is started as ``setpriv --pdeathsig KILL -- /bin/sh -c LAUNCH ...`` (``launch_argv``):
util-linux's ``setpriv`` arms the parent-death signal, then a few lines of ``sh`` check that the parent
is still the one that started it (else it died before the signal was armed: exit 137), write their own
pid into the run's cgroups and ``exec`` the workload. So the workload never runs outside its cgroup or
without the signal, and no Python code runs in the child: the spawn stays a vfork/exec however large
tunesmith is (a ``preexec_fn`` would force a full fork, tens of milliseconds for a process that has
imported torch). Where ``setpriv`` or its ``--pdeathsig`` is missing, ``launcher`` is None and the
runner falls back to a ``preexec_fn``.

``check_program`` finds the usual launch errors (no such file, permission denied) in the parent before
the spawn, because behind the launcher the workload's own exec comes after the spawn succeeded;
``launcher_exec_error`` turns the launcher's "cannot execute" exit into the same one-line launch error.
``ExitWaiter`` sleeps until the child exits (its pidfd), a wake-up is asked for, or a timeout passes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import shutil
import subprocess
import threading
from pathlib import Path

SHELL = "/bin/sh"
LAUNCHER_NAME = "tunesmith-launch"  # $0 of the launcher shell: its error messages start with this
# $1: the parent's pid; then the cgroup.procs files to join, "--", and the workload's argv.
_LAUNCH = (
    'p=$1; shift; [ "$PPID" = "$p" ] || exit 137; '
    'while [ "$1" != -- ]; do { echo $$ > "$1"; } 2>/dev/null; shift; done; shift; exec "$@"'
)

_launcher: list[str] | None = None
_probed = False


def launcher() -> list[str] | None:
    """``[setpriv, "--pdeathsig", "KILL", "--", "/bin/sh"]`` where that works here (probed once), else None."""
    global _launcher, _probed
    if not _probed:
        _probed = True
        exe = shutil.which("setpriv")
        if exe is not None and os.access(SHELL, os.X_OK):
            cmd = [exe, "--pdeathsig", "KILL", "--", SHELL]
            try:  # old util-linux (< 2.33) lacks --pdeathsig; a sandbox may refuse the prctl
                ok = subprocess.run([*cmd, "-c", "exit 0"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, timeout=10).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            _launcher = cmd if ok else None
    return _launcher


def launch_argv(prefix: list[str], argv: list[str], procs_files: list[str]) -> list[str]:
    """The launcher's command line: die with this process, join ``procs_files``, then exec ``argv``."""
    return [*prefix, "-c", _LAUNCH, LAUNCHER_NAME, str(os.getpid()), *procs_files, "--", *argv]


def check_program(name: str, cwd: Path, env: dict[str, str]) -> None:
    """Raise what ``execvp(name)`` would (no such file, permission denied), looked up as the child will.

    Behind the launcher the workload's own exec happens after the spawn has succeeded, so the usual
    launch errors are found here first, in the parent.
    """
    if "/" in name:
        candidates = [Path(name) if os.path.isabs(name) else cwd / name]
        key = None
    else:
        exec_path = os.get_exec_path(env)
        relative = any(not d or not os.path.isabs(d) for d in exec_path)  # only then does cwd matter
        key = (name, str(cwd) if relative else "", tuple(exec_path))
        hit = _found.get(key)
        if hit is not None and os.path.isfile(hit) and os.access(hit, os.X_OK):
            return  # found there before and still executable: no walk along PATH for every run
        candidates = [(cwd / d if d and not os.path.isabs(d) else Path(d or cwd)) / name for d in exec_path]
    denied = False
    for path in candidates:
        if path.is_file():
            if os.access(path, os.X_OK):
                if key is not None:
                    if len(_found) > 256:
                        _found.clear()
                    _found[key] = str(path)
                return
            denied = True
        elif path.exists():
            denied = True  # a folder, or something else that cannot be executed
    if denied:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


_found: dict[tuple[str, str, tuple[str, ...]], str] = {}  # (name, cwd, PATH) -> where check_program found it


_EXEC_FAILED = re.compile(rf"^{LAUNCHER_NAME}: \d+: exec: .*: ([^:\n]+)$", re.M)
_REASONS: dict[str, type[OSError]] = {"not found": FileNotFoundError, "Permission denied": PermissionError}


def launcher_exec_error(argv: list[str], returncode: int | None, stderr: str) -> str:
    """The launch error when the launcher could not execute the workload (exit 126/127), else ""."""
    m = _EXEC_FAILED.match(stderr) if returncode in (126, 127) else None
    if m is None:
        return ""
    reason = m.group(1).strip()
    kind = _REASONS.get(reason, OSError)
    text = "no such file or directory" if kind is FileNotFoundError else reason
    return launch_error(argv, kind(errno.ENOENT if kind is FileNotFoundError else 0, text))


class ExitWaiter:
    """Blocks until the child exits, a wake-up is asked for, or a timeout passes; never reaps the child.

    Uses the child's pidfd where the kernel has one; elsewhere it sleeps in slices that grow from 1 ms to
    the timeout asked for, so a short run is still seen quickly. ``wake`` may be called from any thread.
    """

    def __init__(self, pid: int) -> None:
        self._lock = threading.Lock()
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._poll = select.poll()
        self._poll.register(self._read, select.POLLIN)
        self._pidfd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self._pidfd = os.pidfd_open(pid)
            self._poll.register(self._pidfd, select.POLLIN)
        self._slice = 0.001

    def wait(self, seconds: float) -> None:
        if self._pidfd is None:
            seconds = min(seconds, self._slice)
            self._slice = min(self._slice * 2, 0.05)
        self._poll.poll(max(int(seconds * 1000), 1))

    def wake(self) -> None:
        with self._lock:
            if self._write >= 0:
                with contextlib.suppress(OSError):
                    os.write(self._write, b"x")

    def close(self) -> None:
        with self._lock:
            for fd in (self._read, self._write, self._pidfd):
                if fd is not None and fd >= 0:
                    os.close(fd)
            self._read = self._write = -1
            self._pidfd = None


def launch_error(argv: list[str], exc: BaseException) -> str:
    exe = argv[0] if argv else ""
    if isinstance(exc, FileNotFoundError):
        return f"cannot start {exe!r}: no such file or directory; fix: install it or give its full path"
    if isinstance(exc, PermissionError):
        return f"cannot start {exe!r}: permission denied; fix: make it executable or run it through its interpreter"
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot start {exe!r}: {reason}; fix: check the command and its interpreter line"
