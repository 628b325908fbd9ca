"""A metadata-heavy workload: create, write, stat and delete many small files.

``--files`` files of ``--size-bytes`` bytes each are spread over ``--fanout`` subfolders, each written
with one ``write``, then every file is ``stat``-ed ``--stats`` times, read back and checked, and deleted.
``--fsync`` sets the durability policy: ``each`` (fsync every file before closing it), ``dir`` (fsync
every subfolder once at the end, making the new names durable) or ``end`` (one ``syncfs`` at the end).
Every policy ends durable before the clock stops (``syncfs`` after the creates, whatever the policy).

The page cache: the files are read back just after being written, so those reads are cached, which is
what a create/stat/read/unlink cycle meets in practice; the metric is the time of the whole cycle.
``seconds`` and ``files_per_s`` go to ``$TUNESMITH_RESULT`` and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def syncfs(path: Path) -> None:
    """Flush the file system holding ``path`` (syncfs(2) through libc; os.sync() where there is none)."""
    import ctypes

    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--size-bytes", type=int, default=512)
    ap.add_argument("--fanout", type=int, default=1, help="subfolders the files are spread over")
    ap.add_argument("--stats", type=int, default=2, help="stat calls per file")
    ap.add_argument("--fsync", choices=["each", "dir", "end"], default="each")
    args = ap.parse_args(argv)
    root = Path(args.out) / "tree"
    payload = os.urandom(args.size_bytes)
    t0 = time.perf_counter()
    dirs = [root / f"d{i:04d}" for i in range(max(1, args.fanout))]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    names = [str(dirs[i % len(dirs)] / f"f{i:06d}") for i in range(args.files)]
    for name in names:
        fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, payload)
        if args.fsync == "each":
            os.fsync(fd)
        os.close(fd)
    if args.fsync == "dir":
        for d in dirs:
            fd = os.open(d, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    syncfs(root)  # every policy ends durable
    for name in names:
        for _ in range(args.stats):
            os.stat(name)
        with open(name, "rb") as f:
            if f.read() != payload:
                print(f"error: {name} read back wrong", file=sys.stderr)
                return 1
        os.unlink(name)
    seconds = time.perf_counter() - t0
    result = {"seconds": seconds, "files_per_s": args.files / seconds}
    print(json.dumps(result))
    target = os.environ.get("TUNESMITH_RESULT")
    if target:
        Path(target).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
