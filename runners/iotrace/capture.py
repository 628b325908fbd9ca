"""Capturing a trace: darshan-runtime where it is installed, strace where it is not; and loading any trace.

``find_libdarshan`` looks for ``libdarshan.so`` in ``$DARSHAN_LIB`` (a file or a folder), the dynamic
linker's cache (``ldconfig -p``), ``$DARSHAN_ROOT/lib`` and the usual install folders. ``traced`` turns a
command and its environment into the traced ones (``LD_PRELOAD`` with ``DARSHAN_ENABLE_NONMPI=1`` and
``DARSHAN_LOGFILE``, or the strace wrapper), ``load_trace`` reads whatever a capture left (or any Darshan
log or strace output given by hand) into an ``IOCharacterisation``.
"""

from __future__ import annotations

import functools
import glob
import os
import subprocess
from pathlib import Path
from typing import Literal

from .model import IOCharacterisation, TraceError

Tracer = Literal["darshan", "strace"]
LIB_NAME = "libdarshan.so"
USUAL_DIRS = ("/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/local/lib64", "/usr/lib/x86_64-linux-gnu",
              "/opt/darshan/lib", "/opt/darshan-runtime/lib")
DARSHAN_LOG = "trace.darshan"
STRACE_PREFIX = "strace"


def find_libdarshan() -> str | None:
    """The path of darshan-runtime's ``libdarshan.so``, or None where it is not installed."""
    env = os.environ.get("DARSHAN_LIB", "")
    if env:
        p = Path(env)
        for cand in ([p] if p.is_file() else [p / LIB_NAME, p / "lib" / LIB_NAME]):
            if cand.is_file():
                return str(cand)
    try:
        cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        cache = ""
    for line in cache.splitlines():
        if LIB_NAME in line and "=>" in line:
            path = line.split("=>", 1)[1].strip()
            if Path(path).is_file():
                return path
    roots = [os.environ.get("DARSHAN_ROOT", "")] + [d for d in glob.glob("/opt/darshan*")]
    dirs = [str(Path(r) / "lib") for r in roots if r] + list(USUAL_DIRS)
    for d in dirs:
        cand = Path(d) / LIB_NAME
        if cand.is_file():
            return str(cand)
    return None


@functools.lru_cache(maxsize=1)
def strace_works() -> str:
    """Why strace cannot trace here ('' when it can): not installed, or ptrace refused in this container."""
    from .strace_log import strace_path

    prog = strace_path()
    if prog is None:
        return "strace is not installed"
    try:
        res = subprocess.run([prog, "-f", "-qq", "-o", os.devnull, "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"strace could not start ({exc})"
    if res.returncode != 0:
        return f"strace cannot trace here: {(res.stderr.strip().splitlines() or ['?'])[0][:120]}"
    return ""


def available_tracer(allowed: tuple[Tracer, ...] = ("darshan", "strace")) -> tuple[Tracer | None, str]:
    """The first of ``allowed`` that works here, and why the others do not (one line)."""
    why: list[str] = []
    for tracer in allowed:
        if tracer == "darshan":
            if find_libdarshan():
                return "darshan", ""
            why.append("darshan-runtime (libdarshan.so) not found (set DARSHAN_LIB to its path)")
        else:
            problem = strace_works()
            if not problem:
                return "strace", "; ".join(why)
            why.append(problem)
    return None, "; ".join(why)


def traced(argv: list[str], env: dict[str, str], outdir: Path, tracer: Tracer) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run ``argv`` under ``tracer``, writing into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    if tracer == "darshan":
        lib = find_libdarshan()
        if lib is None:
            raise TraceError("darshan-runtime (libdarshan.so) not found", "set DARSHAN_LIB or use the strace tracer")
        preload = " ".join(x for x in (lib, env.get("LD_PRELOAD", os.environ.get("LD_PRELOAD", ""))) if x)
        extra = {"LD_PRELOAD": preload, "DARSHAN_ENABLE_NONMPI": "1", "DARSHAN_LOGFILE": str(outdir / DARSHAN_LOG)}
        return list(argv), {**env, **extra}
    from .strace_log import strace_path, tracer_argv

    return tracer_argv(list(argv), outdir / STRACE_PREFIX, strace_path() or "strace"), dict(env)


def load_trace(path: str | Path) -> IOCharacterisation:
    """The characterisation of a Darshan log, a strace output (file, ``prefix.PID`` family or folder), or
    a capture folder holding either."""
    from .darshan_log import from_darshan, looks_like_darshan
    from .strace_log import from_strace, looks_like_strace, trace_files

    path = Path(path)
    if path.is_dir():
        logs = sorted(path.glob("*.darshan"))
        if logs:
            return from_darshan(logs[0])
        family = path / STRACE_PREFIX
        if trace_files(family):
            return from_strace(family)
    if path.is_file() and looks_like_darshan(path):
        return from_darshan(path)
    if (path.exists() or trace_files(path)) and looks_like_strace(path):
        return from_strace(path)
    if not path.exists() and not trace_files(path):
        raise TraceError(f"{path}: no such file", "give the path of a Darshan log or a strace output")
    raise TraceError(f"{path}: neither a Darshan log nor strace output",
                     "give a .darshan log or the output of `strace -f -tt -T -y -o FILE CMD`")


def run_traced(argv: list[str], out_dir: Path | None = None) -> tuple[IOCharacterisation, int, Path]:
    """Run ``argv`` under the tracer that works here (its output to stderr) and characterise it.

    Returns the characterisation, the command's exit code and the folder holding the trace. No command is
    a usage error (exit 2); no working tracer is an infrastructure error (exit 4).
    """
    import shutil
    import sys
    import tempfile

    from ..errors import InfrastructureError

    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise TraceError("no command to trace", "give it after --, e.g. `tune io trace -- python my_io.py`")
    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        raise TraceError(f"command {argv[0]!r} not found", "give an installed program or a path to it")
    tracer, why = available_tracer()
    if tracer is None:
        raise InfrastructureError(f"no I/O tracer works here ({why})", "install strace or darshan-runtime")
    where = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="tunesmith-trace-"))
    cmd, env = traced(argv, {}, where, tracer)
    proc = subprocess.run(cmd, env={**os.environ, **env}, stdout=sys.stderr, stderr=sys.stderr, check=False)
    char = load_trace(where)
    if not char.exe:
        import shlex

        char = char.model_copy(update={"exe": shlex.join(argv)[:300]})
    return char, proc.returncode, where
