"""Write a model-like checkpoint durably and time it: the workload of tunesmith's main I/O job.

Builds a deterministic state dict of float32 torch tensors (an embedding, transformer layers with large
matrices and small norm/bias vectors, a head) totalling ``--size-mb`` MiB and writes it to ``--out`` as
safetensors files (8-byte header length, JSON header with ``data_offsets``, raw data; the header is padded
with spaces so data starts on a 4 KiB boundary, which O_DIRECT needs). Knobs: ``--threads``,
``--chunk-kib`` (bytes per write call, from a page-aligned buffer), ``--fsync`` (``per_chunk``,
``per_file`` or one ``end_syncfs``), ``--layout`` (``single`` file at disjoint offsets per thread, or
``shards``: one file per thread plus an index) and ``--direct`` (O_DIRECT). Every policy ends durable,
directory included, so none wins by leaving dirty pages behind.

``seconds`` runs from the first open until the checkpoint is durable. Before it the previous output is
removed, ``os.sync()`` flushes older dirty data and, with ``--drop-caches`` (root), the page cache is
dropped. After it, untimed, every file is evicted from the cache (``POSIX_FADV_DONTNEED``), read back, and
each tensor's shape and CRC-32 compared with what was meant to be written. The result JSON goes to
``$TUNESMITH_RESULT`` (stdout when unset). Exit code 78 (EX_CONFIG): the file system refused O_DIRECT.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import mmap
import os
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ALIGN = 4096
EXIT_NO_DIRECT = 78
MIB = 1 << 20
INDEX = "model.safetensors.index.json"


def build_state_dict(size_mb: int, seed: int) -> dict[str, torch.Tensor]:
    """A transformer-shaped state dict of exactly ``size_mb`` MiB of float32 values."""
    total = size_mb * MIB // 4  # float32 elements
    d = 256 if size_mb <= 16 else 512 if size_mb <= 96 else 1024
    layer = {"attn.qkv.weight": (3 * d, d), "attn.qkv.bias": (3 * d,), "attn.out.weight": (d, d),
             "attn.out.bias": (d,), "norm1.weight": (d,), "norm1.bias": (d,), "mlp.up.weight": (4 * d, d),
             "mlp.up.bias": (4 * d,), "mlp.down.weight": (d, 4 * d), "mlp.down.bias": (d,),
             "norm2.weight": (d,), "norm2.bias": (d,)}  # fmt: skip
    per_layer = sum(int(torch.Size(s).numel()) for s in layer.values())
    shapes = {"embed_tokens.weight": (min(8192, total // (4 * d)), d)}
    used = shapes["embed_tokens.weight"][0] * d
    i = 0
    while total - used > per_layer + 2 * d:  # leave room for the final norm and at least one head row
        shapes.update({f"layers.{i}.{name}": shape for name, shape in layer.items()})
        used, i = used + per_layer, i + 1
    shapes["norm.weight"] = (d,)
    rest = total - used - d
    shapes["lm_head.weight"] = (rest // d, d) if rest % d == 0 else (rest,)
    gen = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=gen) for name, shape in shapes.items()}


class FilePlan:
    """One safetensors file: its padded header and the tensors laid out after it."""

    def __init__(self, path: Path, names: list[str], views: dict[str, memoryview], shapes: dict) -> None:
        self.path, self.names, self.segments, pos = path, names, [], 0
        header: dict = {"__metadata__": {"format": "pt", "writer": "tunesmith"}}
        for name in names:
            header[name] = {
                "dtype": "F32",
                "shape": shapes[name],
                "data_offsets": [pos, pos + len(views[name])],
            }
            self.segments.append((pos, views[name]))
            pos += len(views[name])
        self.data_len = pos
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-(8 + len(text)) % ALIGN)
        self.header = len(text).to_bytes(8, "little") + text
        self.total = len(self.header) + pos

    def fill(self, buf: memoryview, lo: int, hi: int) -> None:
        """Copy data bytes [lo, hi) of this file into ``buf``."""
        for start, mv in self.segments:
            a, b = max(lo, start), min(hi, start + len(mv))
            if a < b:
                buf[a - lo : b - lo] = mv[a - start : b - start]


def plan_files(args: argparse.Namespace, views: dict[str, memoryview], shapes: dict) -> list[FilePlan]:
    names = list(views)
    if args.layout == "single":
        return [FilePlan(args.out / "model.safetensors", names, views, shapes)]
    groups: list[list[str]] = [[] for _ in range(args.threads)]
    load = [0] * args.threads
    for name in sorted(names, key=lambda n: -len(views[n])):  # largest first onto the lightest shard
        k = load.index(min(load))
        groups[k].append(name)
        load[k] += len(views[name])
    groups = [sorted(g, key=names.index) for g in groups if g]
    n = len(groups)
    return [FilePlan(args.out / f"model-{i:05d}-of-{n:05d}.safetensors", g, views, shapes) for i, g in enumerate(groups, 1)]  # fmt: skip


class Writer:
    """Writes ranges of planned files with one set of knobs; returns (writes, fsyncs) per task."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.chunk, self.direct, self.fsync = args.chunk_kib * 1024, args.direct, args.fsync

    def open(self, path: Path) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if self.direct else 0)
        return os.open(path, flags, 0o644)

    def _pwrite(self, fd: int, view: memoryview, offset: int) -> int:
        while len(view):
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
        if self.fsync == "per_chunk":
            os.fsync(fd)
            return 1
        return 0

    def task(self, fd: int, plan: FilePlan, lo: int, hi: int, header: bool, finish: bool) -> tuple[int, int]:
        """Write data bytes [lo, hi) (and the header, and finish the file) in chunk-sized writes."""
        writes = fsyncs = 0
        size = max(len(plan.header) if header else 0, min(self.chunk, -(-(hi - lo) // ALIGN) * ALIGN), ALIGN)
        with mmap.mmap(-1, size) as mm, memoryview(mm) as buf:  # page-aligned, as O_DIRECT needs
            if header:
                buf[: len(plan.header)] = plan.header
                fsyncs += self._pwrite(fd, buf[: len(plan.header)], 0)
                writes += 1
            for pos in range(lo, hi, min(size, self.chunk)):
                n = min(size, self.chunk, hi - pos)
                plan.fill(buf, pos, pos + n)
                # O_DIRECT needs whole blocks: the file's tail is padded here and truncated in finish()
                length = -(-n // ALIGN) * ALIGN if self.direct else n
                buf[n:length] = bytes(length - n)
                fsyncs += self._pwrite(fd, buf[:length], len(plan.header) + pos)
                writes += 1
        return writes, fsyncs + (self.finish(fd, plan) if finish else 0)

    def finish(self, fd: int, plan: FilePlan) -> int:
        if self.direct:
            os.ftruncate(fd, plan.total)
        if self.fsync == "end_syncfs":
            return 0
        os.fsync(fd)
        return 1


def write_checkpoint(args: argparse.Namespace, plans: list[FilePlan]) -> dict:
    """The timed part: write every file, make it durable, fsync the directory."""
    w = Writer(args)
    fds = [w.open(p.path) for p in plans]
    try:
        if args.layout == "single":
            plan, fd = plans[0], fds[0]
            per = max(-(-plan.data_len // args.threads // w.chunk) * w.chunk, w.chunk)
            tasks = [(fd, plan, k * per, min((k + 1) * per, plan.data_len), k == 0, False) for k in range(args.threads)]  # fmt: skip
        else:
            tasks = [(fd, p, 0, p.data_len, True, True) for p, fd in zip(plans, fds, strict=True)]
        with ThreadPoolExecutor(len(tasks)) as pool:
            counts = list(pool.map(lambda t: w.task(*t), tasks))
        writes, fsyncs = sum(c[0] for c in counts), sum(c[1] for c in counts)
        if args.layout == "single":
            fsyncs += w.finish(fds[0], plans[0])
        else:
            weight_map = {name: p.path.name for p in plans for name in p.names}
            index = {"metadata": {"total_size": sum(p.data_len for p in plans)}, "weight_map": weight_map}
            with open(args.out / INDEX, "wb") as f:
                f.write(json.dumps(index, indent=1).encode())
                f.flush()
                if args.fsync != "end_syncfs":
                    os.fsync(f.fileno())
                    fsyncs += 1
    finally:
        for fd in fds:
            os.close(fd)
    dfd = os.open(args.out, os.O_RDONLY)
    try:
        method = _syncfs(dfd) if args.fsync == "end_syncfs" else "fsync"
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return {"writes": writes, "fsyncs": fsyncs + 1, "sync_method": method}


def _syncfs(fd: int) -> str:
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
            return "syncfs"
    except (OSError, AttributeError):
        pass
    os.sync()
    return "sync"


def verify(args: argparse.Namespace, plans: list[FilePlan], expected: dict[str, tuple]) -> str:
    """Read every file back and compare each tensor's shape and CRC-32; '' when all match."""
    found: dict[str, tuple] = {}
    for plan in plans:
        with open(plan.path, "rb", buffering=0) as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # durable, so clean: read from storage
            if os.fstat(f.fileno()).st_size != plan.total:
                return f"{plan.path.name}: size {os.fstat(f.fileno()).st_size} != {plan.total}"
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                lo, hi = info["data_offsets"]
                f.seek(8 + n + lo)
                crc, left = 0, hi - lo
                while left > 0 and (block := f.read(min(16 * MIB, left))):
                    crc, left = zlib.crc32(block, crc), left - len(block)
                found[name] = (crc, info["shape"])
    bad = sorted(k for k in expected.keys() | found.keys() if found.get(k) != expected.get(k))
    if bad:
        return f"{len(bad)} tensors differ or are missing, e.g. {bad[0]}"
    if args.layout == "shards" and set(json.loads((args.out / INDEX).read_text())["weight_map"]) != set(
        expected
    ):
        return "the index does not map every tensor"
    return ""


def drop_page_cache() -> tuple[bool, str]:
    """Flush dirty pages and drop the page cache (root only); (dropped, why not)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True, ""
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc.strerror or exc}"


def filesystem(path: Path) -> dict[str, str]:
    """Mount point, type and options of the file system holding ``path`` (longest /proc/self/mounts match)."""
    target, best = path.resolve(), {"mount": "/", "fstype": "unknown", "options": ""}
    for line in (
        Path("/proc/self/mounts").read_text().splitlines() if Path("/proc/self/mounts").exists() else []
    ):
        parts = line.split()
        mount = parts[1].replace("\\040", " ") if len(parts) >= 4 else ""
        if (
            mount
            and (target == Path(mount) or Path(mount) in target.parents)
            and len(mount) >= len(best["mount"])
        ):
            best = {"mount": mount, "fstype": parts[2], "options": parts[3]}
    return best


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="folder to write the checkpoint into")
    ap.add_argument("--size-mb", type=int, default=256, help="checkpoint size in MiB")
    ap.add_argument("--threads", type=int, default=1, help="writer threads")
    ap.add_argument("--chunk-kib", type=int, default=1024, help="bytes per write call, in KiB")
    ap.add_argument("--fsync", choices=["per_chunk", "per_file", "end_syncfs"], default="per_file")
    ap.add_argument("--layout", choices=["single", "shards"], default="single")
    ap.add_argument("--direct", action="store_true", help="O_DIRECT writes from page-aligned buffers")
    ap.add_argument("--drop-caches", action="store_true", help="drop the page cache before timing (root)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.size_mb < 1 or args.threads < 1 or args.chunk_kib < 4 or args.chunk_kib % 4:
        ap.error("--size-mb and --threads must be >= 1; --chunk-kib a multiple of 4 (O_DIRECT alignment)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    tensors = build_state_dict(args.size_mb, args.seed)
    views = {name: memoryview(t.numpy()).cast("B") for name, t in tensors.items()}
    shapes = {name: list(t.shape) for name, t in tensors.items()}
    expected = {name: (zlib.crc32(mv), shapes[name]) for name, mv in views.items()}
    plans = plan_files(args, views, shapes)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in [*args.out.glob("model*.safetensors"), args.out / INDEX]:  # only what this script writes
        old.unlink(missing_ok=True)
    dropped, drop_error = drop_page_cache() if args.drop_caches else (None, "not requested")
    os.sync()  # nothing dirty from earlier runs may be flushed inside the timed region
    setup_s = time.perf_counter() - t0
    start = time.perf_counter()
    try:
        counts = write_checkpoint(args, plans)
    except OSError as exc:
        if args.direct and exc.errno == errno.EINVAL:
            fs = filesystem(args.out)["fstype"]
            print(f"write_checkpoint: the {fs} file system at {args.out} refused O_DIRECT ({exc.strerror}); "
                  "run without --direct", file=sys.stderr)  # fmt: skip
            return EXIT_NO_DIRECT
        raise
    seconds = time.perf_counter() - start
    t1 = time.perf_counter()
    problem = verify(args, plans, expected)
    nbytes = sum(len(mv) for mv in views.values())
    result = {
        "seconds": seconds, "mb_per_s": nbytes / MIB / seconds, "bytes": nbytes,
        "file_bytes": sum(p.total for p in plans), "files": len(plans), "tensors": len(tensors),
        "correct": not problem, "verify_error": problem, "verify_s": time.perf_counter() - t1,
        "setup_s": setup_s, "page_cache_dropped": dropped, "drop_caches_error": drop_error,
        "fs": filesystem(args.out), **counts,
        "config": {k: getattr(args, k) for k in ("size_mb", "threads", "chunk_kib", "fsync", "layout", "direct")},
    }  # fmt: skip
    if os.environ.get("TUNESMITH_RESULT"):
        Path(os.environ["TUNESMITH_RESULT"]).write_text(json.dumps(result, indent=1))
        print(
            f"wrote {nbytes / MIB:.0f} MiB in {seconds:.3f} s ({result['mb_per_s']:.0f} MiB/s), correct={not problem}"
        )
    else:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
