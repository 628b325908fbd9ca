"""Compress a day of web-server logs into an archive durably and time it (a data-pipeline workload).

The input is ``--size-mb`` MiB (default 8) of deterministic access-log lines, generated in memory
before the clock starts. The timed part splits it into chunks of ``--chunk-kib`` KiB, compresses each
chunk as an independent frame with ``--codec`` (``zlib``, ``bz2`` or ``lzma``, the xz format) at
``--level`` on ``--workers`` threads (all three codecs release the GIL while they compress), writes the
frames to one archive file with a small length-prefixed index and fsyncs it. The default, ``lzma`` at
level 6 on 1 MiB chunks and one thread, is what ``xz`` or ``lzma.open`` gives you without options.

After the clock stops, untimed, the archive is read back, every frame decompressed and the result
compared with the input; a mismatch reports ``correct: false``. The result JSON (``seconds``,
``mb_per_s``, ``ratio``) goes to ``$TUNESMITH_RESULT`` (stdout when unset).
"""

from __future__ import annotations

import argparse
import bz2
import json
import lzma
import os
import random
import struct
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MIB = 1 << 20
PATHS = ("/", "/index.html", "/api/v1/items", "/api/v1/items/{}", "/static/app.js", "/login", "/search?q={}")
AGENTS = ("Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "python-requests/2.31", "Googlebot/2.1")
FRAME = struct.Struct("<I")  # each frame: its compressed length, then the bytes


def make_logs(size: int, seed: int = 11) -> bytes:
    """``size`` bytes of access-log lines (common log format), the same for the same seed."""
    rng = random.Random(seed)
    lines, total, t = [], 0, 1_700_000_000
    while total < size:
        t += rng.randint(0, 3)
        path = rng.choice(PATHS).format(rng.randint(1, 99999))
        line = (
            f'10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} - - [{t}] '
            f'"GET {path} HTTP/1.1" {rng.choice((200, 200, 200, 304, 404, 500))} {rng.randint(120, 90000)} '
            f'"{rng.choice(AGENTS)}"\n'
        )
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def compressor(codec: str, level: int):  # noqa: ANN201 - a bytes -> bytes function
    if codec == "zlib":
        return lambda data: zlib.compress(data, level)
    if codec == "bz2":
        return lambda data: bz2.compress(data, level)
    return lambda data: lzma.compress(data, preset=level)


def decompressor(codec: str):  # noqa: ANN201
    return {"zlib": zlib.decompress, "bz2": bz2.decompress, "lzma": lzma.decompress}[codec]


def archive(args: argparse.Namespace, data: bytes, path: Path) -> int:
    """Compress ``data`` into ``path`` durably; the archive's size in bytes."""
    step = args.chunk_kib * 1024
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    compress = compressor(args.codec, args.level)
    if args.workers > 1:
        with ThreadPoolExecutor(args.workers) as pool:
            frames = list(pool.map(compress, chunks))
    else:
        frames = [compress(c) for c in chunks]
    with open(path, "wb") as f:
        f.write(FRAME.pack(len(frames)))
        for frame in frames:
            f.write(FRAME.pack(len(frame)))
            f.write(frame)
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


def verify(path: Path, data: bytes, codec: str) -> str:
    """An empty string when the archive decompresses to ``data``, else what is wrong."""
    blob = path.read_bytes()
    (count,), pos, parts = FRAME.unpack_from(blob, 0), FRAME.size, []
    decompress = decompressor(codec)
    for _ in range(count):
        (size,) = FRAME.unpack_from(blob, pos)
        pos += FRAME.size
        try:
            parts.append(decompress(blob[pos : pos + size]))
        except (OSError, ValueError, zlib.error, lzma.LZMAError) as exc:
            return f"frame {len(parts)} does not decompress ({type(exc).__name__})"
        pos += size
    if pos != len(blob):
        return "trailing bytes after the last frame"
    return "" if b"".join(parts) == data else "the decompressed archive differs from the input"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write the archive into")
    parser.add_argument("--size-mb", type=int, default=8)
    parser.add_argument("--chunk-kib", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--level", type=int, default=6, choices=range(1, 10))
    parser.add_argument("--codec", choices=("zlib", "bz2", "lzma"), default="lzma")
    args = parser.parse_args(argv)
    if min(args.size_mb, args.chunk_kib, args.workers) < 1:
        parser.error("--size-mb, --chunk-kib and --workers must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"logs.{args.codec}.frames"
    data = make_logs(args.size_mb * MIB)
    started = time.perf_counter()
    size = archive(args, data, path)
    seconds = time.perf_counter() - started
    problem = verify(path, data, args.codec)
    result = {
        "seconds": seconds,
        "mb_per_s": len(data) / MIB / seconds,
        "ratio": len(data) / size,
        "correct": not problem,
    }
    if problem:
        result["verify_error"] = problem
    text = json.dumps(result)
    target = os.environ.get("TUNESMITH_RESULT")
    if target:
        Path(target).write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
