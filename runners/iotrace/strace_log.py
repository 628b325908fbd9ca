"""The fallback tracer: strace output turned into the same POSIX counters a Darshan log holds.

``tracer_argv`` wraps a command in ``strace -ff -tt -T -y`` (one output file per process, wall-clock
times, the time spent in each call, file descriptors shown with their paths) restricted to the file and
descriptor calls. ``read_tables`` parses those files (or one ``strace -f`` file with process ids at the
start of each line) into one POSIX record per (process, file): opens, reads and writes with their sizes
and offsets (``lseek``, ``pread``/``pwrite``), syncs, stats, creates and unlinks, and the seconds spent in
each. Each traced process counts as a rank. Files the interpreter and libraries load (system folders,
the Python installation, ``.py``/``.pyc``/``.so`` files) and pipes, sockets and devices are left out, as
darshan-runtime leaves out its excluded folders.

What strace cannot see: buffered STDIO (it shows up as the POSIX calls it makes), MPI-IO and HDF5 calls
(only their POSIX calls), and mmap'ed accesses. The characterisation says ``source = "strace"``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

from .characterise import TraceTables, characterise
from .model import SIZE_BINS, IOCharacterisation, TraceError, size_bin

TRACE_SET = "%file,%desc,sync"
LINE = re.compile(
    r"^(?:\[pid\s+)?(?:(?P<pid>\d+)\]?\s+)?(?P<ts>\d\d:\d\d:\d\d\.\d+)\s+"
    r"(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|0x[0-9a-f]+|\?)(?:<(?P<retpath>[^>]*)>)?"
    r"(?P<rest>.*?)(?:\s+<(?P<dur>\d+\.\d+)>)?$"
)
UNFINISHED = re.compile(r"^(?:(?P<pid>\d+)\s+)?(?P<head>.*)\s+<unfinished \.\.\.>$")
RESUMED = re.compile(r"^(?:(?P<pid>\d+)\s+)?(?P<ts>\S+)\s+<\.\.\. (?P<name>\w+) resumed>(?P<tail>.*)$")
FD_PATH = re.compile(r"^(-?\d+|AT_FDCWD)<(?P<path>[^>]*)>")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
EXCLUDED_DIRS = ("/etc/", "/dev/", "/usr/", "/bin/", "/boot/", "/lib/", "/lib64/", "/opt/", "/sbin/", "/sys/",
                 "/proc/", "/var/", "/snap/")
EXCLUDED_SUFFIX = re.compile(r"(\.py|\.pyc|\.pth|\.so(\.[0-9.]+)?|\.pyi|\.typed)$")
READS = {"read", "readv", "pread64", "preadv", "preadv2"}
WRITES = {"write", "writev", "pwrite64", "pwritev", "pwritev2"}
OFFSET_ARG = {"pread64": -1, "pwrite64": -1, "preadv": -1, "pwritev": -1, "preadv2": -2, "pwritev2": -2}
OPENS = {"open", "openat", "openat2", "creat"}
STATS = {"stat", "lstat", "fstat", "newfstatat", "fstatat64", "statx", "stat64", "lstat64", "fstat64",
         "access", "faccessat", "faccessat2", "statfs", "fstatfs"}
SYNCS = {"fsync": "POSIX_FSYNCS", "fdatasync": "POSIX_FDSYNCS", "sync_file_range": "POSIX_FDSYNCS",
         "syncfs": "POSIX_FSYNCS"}
UNLINKS = {"unlink", "unlinkat", "rmdir"}
CREATES = {"mkdir", "mkdirat", "mknod", "mknodat"}
RENAMES = {"rename", "renameat", "renameat2"}
OTHER_META = {"close", "ftruncate", "truncate", "fallocate", "fadvise64", "getdents64", "getdents", "fchmod",
              "chmod", "fchown", "utimensat", "lseek", "_llseek", "mmap"}


def strace_path() -> str | None:
    """The strace program, or None where it is not installed."""
    return shutil.which("strace")


def tracer_argv(argv: list[str], prefix: Path, strace: str = "strace") -> list[str]:
    """``argv`` run under strace, writing one trace file per process to ``prefix.PID``."""
    return [strace, "-ff", "-tt", "-T", "-y", "-qq", "-s", "0", "--seccomp-bpf", "-e", f"trace={TRACE_SET}",
            "-o", str(prefix), "--", *argv]


def _excluded_prefixes() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.expanduser("~/.pyenv"),
             os.path.expanduser("~/.cache")}
    return EXCLUDED_DIRS + tuple(r.rstrip("/") + "/" for r in roots if r)


def data_file(path: str, excluded: tuple[str, ...]) -> bool:
    """Whether ``path`` is a file the workload's own I/O went to (not a library, pipe, socket or device)."""
    if not path.startswith("/") or path.startswith(excluded) or EXCLUDED_SUFFIX.search(path):
        return False
    return path not in ("/", "/tmp")


class _Record(defaultdict):
    def __init__(self) -> None:
        super().__init__(float)
        self.read_end: int | None = None
        self.write_end: int | None = None


class _Parser:
    """Accumulates one POSIX record per (process, path) from strace lines."""

    def __init__(self) -> None:
        self.records: dict[tuple[int, str], _Record] = defaultdict(_Record)
        self.pos: dict[tuple[int, int], int | None] = {}  # (pid, fd) -> file offset, None when unknown
        self.excluded = _excluded_prefixes()
        self.sync_time = 0.0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.lines = 0
        self.calls = 0

    def _path(self, args: str, retpath: str | None, name: str) -> str | None:
        if name in OPENS and retpath:
            return retpath
        m = FD_PATH.match(args)
        q = QUOTED.search(args)
        if q is not None and (m is None or m.group(1) == "AT_FDCWD" or name.endswith("at") or name == "statx"):
            target = q.group(1)
            if target and not target.startswith("/"):
                base = m.group("path") if m else ""
                target = os.path.normpath(os.path.join(base or "/", target))
            if target:
                return target
        return m.group("path") if m else None

    def _access(self, rec: _Record, pid: int, fd: int | None, name: str, args: str, nbytes: int, dur: float) -> None:
        write = name in WRITES
        op = "WRITE" if write else "READ"
        rec[f"POSIX_{op}S"] += 1
        rec[f"POSIX_BYTES_{'WRITTEN' if write else 'READ'}"] += nbytes
        rec[f"POSIX_SIZE_{op}_{size_bin(nbytes)}"] += 1
        rec[f"POSIX_F_{op}_TIME"] += dur
        if name in OFFSET_ARG:
            nums = re.findall(r"(?:,\s*)(-?\d+)", args)
            offset = int(nums[OFFSET_ARG[name]]) if len(nums) >= -OFFSET_ARG[name] else None
        else:
            offset = self.pos.get((pid, fd)) if fd is not None else None
            if fd is not None and offset is not None:
                self.pos[(pid, fd)] = offset + nbytes
        end = rec.write_end if write else rec.read_end
        if offset is not None and end is not None:
            if offset == end:
                rec[f"POSIX_CONSEC_{op}S"] += 1
            if offset >= end:
                rec[f"POSIX_SEQ_{op}S"] += 1
        new_end = (offset + nbytes) if offset is not None else end
        if write:
            rec.write_end = new_end
        else:
            rec.read_end = new_end

    def line(self, pid: int, text: str) -> None:
        self.lines += 1
        m = LINE.match(text)
        if m is None:
            return
        name, args, ret, retpath = m.group("name"), m.group("args"), m.group("ret"), m.group("retpath")
        dur = float(m.group("dur") or 0.0)
        h, mi, s = m.group("ts").split(":")
        ts = int(h) * 3600 + int(mi) * 60 + float(s)
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        fdm = FD_PATH.match(args)
        fd = int(fdm.group(1)) if fdm and fdm.group(1) != "AT_FDCWD" else None
        path = self._path(args, retpath, name)
        value = int(ret, 0) if ret not in ("?",) else -1
        if name in OPENS and value >= 0:
            self.pos[(pid, value)] = None if "O_APPEND" in args else 0
        if path is None or not data_file(path, self.excluded):
            return
        self.calls += 1
        rec = self.records[(pid, path)]
        if name in READS or name in WRITES:
            if value >= 0:
                self._access(rec, pid, fd, name, args, value, dur)
            return
        if name in SYNCS:
            rec[SYNCS[name]] += 1
            rec["POSIX_F_WRITE_TIME"] += dur  # where Darshan counts it
            self.sync_time += dur
            return
        rec["POSIX_F_META_TIME"] += dur
        if name in OPENS:
            rec["POSIX_OPENS"] += 1
            rec["POSIX_CREATES"] += int("O_CREAT" in args or name == "creat")
        elif name in STATS:
            rec["POSIX_STATS"] += 1
        elif name in UNLINKS:
            rec["POSIX_UNLINKS"] += 1
        elif name in CREATES:
            rec["POSIX_CREATES"] += 1
        elif name in RENAMES:
            rec["POSIX_RENAME_SOURCES"] += 1
        elif name in ("lseek", "_llseek"):
            rec["POSIX_SEEKS"] += 1
            if fd is not None and value >= 0:
                self.pos[(pid, fd)] = value
        elif name == "mmap":
            rec["POSIX_MMAPS"] += 1

    def feed(self, pid: int | None, lines: Any) -> None:
        pending: dict[int, str] = {}
        for raw in lines:
            text = raw.rstrip("\n")
            u = UNFINISHED.match(text)
            if u is not None:
                pending[int(u.group("pid") or pid or 0)] = u.group("head")
                continue
            r = RESUMED.match(text)
            if r is not None:
                who = int(r.group("pid") or pid or 0)
                head = pending.pop(who, None)
                if head is None:
                    continue
                text = (f"{who} " if pid is None else "") + head + r.group("tail")
            m = re.match(r"^(\d+)\s+", text) if pid is None else None
            self.line(int(m.group(1)) if m else (pid or 0), text)


def trace_files(path: Path) -> list[tuple[int | None, Path]]:
    """(pid, file) for a strace output: a ``prefix.PID`` family, a folder of them, or one file."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    elif path.is_file():
        files = [path]
        siblings = sorted(path.parent.glob(re.sub(r"\.\d+$", "", path.name) + ".*"))
        if re.search(r"\.\d+$", path.name) and siblings:
            files = [p for p in siblings if re.search(r"\.\d+$", p.name)]
    else:
        files = sorted(p for p in path.parent.glob(path.name + ".*") if re.search(r"\.\d+$", p.name))
    out: list[tuple[int | None, Path]] = []
    for f in files:
        m = re.search(r"\.(\d+)$", f.name)
        out.append((int(m.group(1)) if m else None, f))
    return out


def looks_like_strace(path: Path) -> bool:
    """Whether the first lines of ``path`` (or its first per-process file) parse as strace output."""
    files = trace_files(path)
    if not files:
        return False
    try:
        with open(files[0][1], encoding="utf-8", errors="replace") as f:
            head = [f.readline() for _ in range(20)]
    except OSError:
        return False
    return any(LINE.match(line.rstrip("\n")) or UNFINISHED.match(line.rstrip("\n")) for line in head if line)


def read_tables(path: str | Path) -> TraceTables:
    """The POSIX table (one row per process and file) of a strace capture; processes become ranks."""
    import pandas as pd

    path = Path(path)
    files = trace_files(path)
    if not files:
        raise TraceError(f"{path}: no such file", "give the path of a Darshan log or a strace output")
    parser = _Parser()
    for pid, f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            parser.feed(pid, fh)
    if not parser.lines:
        raise TraceError(f"{path}: the trace is empty", "trace a command that does some I/O")
    pids = sorted({pid for pid, _ in parser.records})
    rank = {pid: i for i, pid in enumerate(pids)}
    rows = []
    for (pid, p), rec in parser.records.items():
        row: dict[str, Any] = {"id": zlib.crc32(p.encode()), "rank": rank[pid]}
        row.update(rec)
        rows.append(row)
    columns = ["id", "rank"] + [f"POSIX_SIZE_{op}_{b}" for op in ("READ", "WRITE") for b in SIZE_BINS]
    frame = pd.DataFrame(rows, columns=sorted(set(columns) | {k for r in rows for k in r})).fillna(0)
    run_time = (parser.last_ts - parser.first_ts) if parser.first_ts is not None else 0.0
    detail = f"strace system calls of {len(files)} process(es), {len(pids)} with file I/O"
    tables = TraceTables(source="strace", path=str(path), nprocs=max(1, len(pids)), run_time_s=max(0.0, run_time),
                         source_detail=detail, frames={"POSIX": frame})
    tables.notes.append("strace sees POSIX calls only: STDIO, MPI-IO and HDF5 layers appear as the POSIX calls they make")
    if not rows:
        tables.notes.append("no file I/O outside system and Python folders was traced")
    tables.sync_time_s = parser.sync_time
    return tables


def from_strace(path: str | Path) -> IOCharacterisation:
    """The characterisation of a strace capture (``prefix.PID`` files, their folder, or one file)."""
    return characterise(read_tables(path))
