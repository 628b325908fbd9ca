"""An HDF5 writer (h5py): a 2-D float32 dataset written row block by row block, then read back and checked.

Knobs: the chunk shape (``--chunk-rows``, 0 = contiguous), the file alignment (``--alignment-kib``,
H5Pset_alignment), the metadata block size (``--meta-block-kib``), the raw-data chunk cache
(``--cache-mib``, H5Pset_chunk_cache) and how many rows each write carries (``--rows-per-write``).
Under mpirun (serial h5py) each rank writes a file of its own (``data.<rank>.h5``).

The page cache: the file is flushed and fsynced before the clock stops; before the check reads it back,
``posix_fadvise(DONTNEED)`` evicts its clean pages (no root needed). ``seconds`` and ``mb_per_s`` (write)
go to ``$TUNESMITH_RESULT`` and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=1024)
    ap.add_argument("--rows-per-write", type=int, default=8)
    ap.add_argument("--chunk-rows", type=int, default=0, help="rows per chunk (0: contiguous)")
    ap.add_argument("--alignment-kib", type=int, default=0, help="align objects of 64 KiB+ to this (0: off)")
    ap.add_argument("--meta-block-kib", type=int, default=2)
    ap.add_argument("--cache-mib", type=int, default=1, help="chunk cache per dataset, MiB")
    args = ap.parse_args(argv)
    import h5py
    import numpy as np

    rank = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"data.{rank}.h5"
    rng = np.random.default_rng(rank)
    data = rng.random((args.rows, args.cols), dtype=np.float32)
    fapl: dict = {"meta_block_size": args.meta_block_kib * 1024}
    if args.alignment_kib:
        fapl["alignment_threshold"], fapl["alignment_interval"] = 64 * 1024, args.alignment_kib * 1024
    chunks = (min(args.chunk_rows, args.rows), args.cols) if args.chunk_rows else None
    t0 = time.perf_counter()
    with h5py.File(path, "w", libver="latest", rdcc_nbytes=args.cache_mib * 1024 * 1024, **fapl) as f:
        ds = f.create_dataset("x", shape=data.shape, dtype=np.float32, chunks=chunks)
        for start in range(0, args.rows, args.rows_per_write):
            ds[start:start + args.rows_per_write] = data[start:start + args.rows_per_write]
        f.flush()
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)  # durable before the clock stops
    seconds = time.perf_counter() - t0
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    with h5py.File(path, "r") as f:
        if not np.array_equal(f["x"][...], data):
            print("error: read-back mismatch", file=sys.stderr)
            return 1
    mb = data.nbytes / 1e6
    result = {"seconds": seconds, "mb_per_s": mb / seconds, "file_mb": path.stat().st_size / 1e6,
              "page_cache": "fsynced before the clock stopped; evicted (fadvise) before the check"}
    print(json.dumps(result))
    target = os.environ.get("TUNESMITH_RESULT")
    if target and rank == 0:
        Path(target).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
