"""An IOR-like MPI-IO benchmark: every rank writes (and optionally reads back) its blocks of a file.

Layouts: ``shared`` (one file, rank r owns the r-th block of every segment, as IOR's segmented layout)
or ``fpp`` (a file per process). Each rank moves ``--block-mib`` MiB per segment in ``--transfer-kib``
requests, with independent (``MPI_File_write_at``) or collective (``MPI_File_write_at_all``) calls. ROMIO
hints come from ``--hint KEY=VALUE`` (repeatable), from ``$TUNESMITH_ROMIO_HINTS`` (``k=v;k=v``) as an
``MPI.Info``, and from a ``$ROMIO_HINTS`` file, which ROMIO reads itself.

The page cache: the write phase ends with ``MPI_File_sync`` (fsync) before the clock stops, so written
data is on the device; before a read phase every rank calls ``posix_fadvise(DONTNEED)`` on the file after
the sync, which evicts its clean pages without root, so reads come from the device. The result says so
(``page_cache``). Run it under MPI (``.venv/bin/mpirun -n 2 python ior.py ...``) or give ``--np N`` to have
it start ``mpirun`` itself. Rank 0 writes ``seconds``, ``mb_per_s`` (and per-phase numbers) to
``$TUNESMITH_RESULT`` as JSON and prints them; every block is checked when read back.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the test file(s)")
    ap.add_argument("--layout", choices=["shared", "fpp"], default="shared")
    ap.add_argument("--transfer-kib", type=int, default=64, help="bytes per MPI-IO call, KiB")
    ap.add_argument("--block-mib", type=int, default=4, help="bytes per rank per segment, MiB")
    ap.add_argument("--segments", type=int, default=2)
    ap.add_argument("--collective", choices=["true", "false"], default="false")
    ap.add_argument("--read", choices=["true", "false"], default="false", help="read back and check")
    ap.add_argument("--hint", action="append", default=[], help="ROMIO hint KEY=VALUE")
    ap.add_argument("--np", type=int, default=0, help="start mpirun with this many ranks (when not under MPI)")
    args = ap.parse_args(argv)
    if args.block_mib * 1024 % args.transfer_kib:
        ap.exit(78, "error: --block-mib must be a multiple of --transfer-kib\n")  # EX_CONFIG: infeasible
    return args


def relaunch(args: argparse.Namespace, argv: list[str]) -> None:
    """Run this script under mpirun (next to this Python, else on PATH) when asked and not under MPI."""
    if args.np <= 0 or any(k in os.environ for k in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")):
        return
    mpirun = Path(sys.executable).parent / "mpirun"
    prog = str(mpirun) if mpirun.exists() else shutil.which("mpirun")
    if prog is None:
        sys.exit("error: mpirun not found; fix: install mpich (pip install mpich) or run under your MPI")
    rest = [a for a in argv if not a.startswith("--np")]
    if "--np" in argv:
        i = argv.index("--np")
        rest = argv[:i] + argv[i + 2:]
    os.execv(prog, [prog, "-n", str(args.np), sys.executable, os.path.abspath(__file__), *rest])


def hints(args: argparse.Namespace):  # noqa: ANN201 - MPI.Info
    from mpi4py import MPI

    info = MPI.Info.Create()
    pairs = [h for h in os.environ.get("TUNESMITH_ROMIO_HINTS", "").split(";") if "=" in h] + args.hint
    for pair in pairs:
        key, value = pair.split("=", 1)
        info.Set(key.strip(), value.strip())
    return info


def pattern(rank: int, segment: int, n: int) -> bytes:
    """A block's content: checkable, different per rank and segment."""
    stamp = f"r{rank:05d}s{segment:05d}".encode()
    return (stamp * (n // len(stamp) + 1))[:n]


def main(argv: list[str]) -> int:
    args = parse(argv)
    relaunch(args, argv)
    import numpy as np  # noqa: F401 - mpi4py buffers
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("ior.shared" if args.layout == "shared" else f"ior.{rank:05d}")
    fcomm = comm if args.layout == "shared" else MPI.COMM_SELF
    info = hints(args)
    xfer, block = args.transfer_kib * 1024, args.block_mib * 1024 * 1024
    collective = args.collective == "true"

    def offset(segment: int, i: int) -> int:
        if args.layout == "shared":
            return (segment * size + rank) * block + i * xfer
        return segment * block + i * xfer

    comm.Barrier()
    t0 = MPI.Wtime()
    fh = MPI.File.Open(fcomm, str(path), MPI.MODE_CREATE | MPI.MODE_WRONLY, info)
    for s in range(args.segments):
        data = pattern(rank, s, block)
        for i in range(block // xfer):
            buf = data[i * xfer:(i + 1) * xfer]
            (fh.Write_at_all if collective else fh.Write_at)(offset(s, i), buf)
    fh.Sync()  # durable before the clock stops
    used = fh.Get_info()
    fh.Close()
    comm.Barrier()
    write_s = comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX)
    moved = args.segments * block * size
    result = {"seconds": write_s, "mb_per_s": moved / 1e6 / write_s, "write_mb_per_s": moved / 1e6 / write_s,
              "ranks": size, "page_cache": "written data fsynced (MPI_File_sync) before the clock stopped"}
    if args.read == "true":
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # evict this file's clean pages (no root needed)
        os.close(fd)
        comm.Barrier()
        t1 = MPI.Wtime()
        fh = MPI.File.Open(fcomm, str(path), MPI.MODE_RDONLY, info)
        bad = 0
        for s in range(args.segments):
            want = pattern(rank, s, block)
            for i in range(block // xfer):
                buf = bytearray(xfer)
                (fh.Read_at_all if collective else fh.Read_at)(offset(s, i), buf)
                bad += bytes(buf) != want[i * xfer:(i + 1) * xfer]
        fh.Close()
        read_s = comm.allreduce(MPI.Wtime() - t1, op=MPI.MAX)
        if comm.allreduce(bad):
            if rank == 0:
                print("error: read-back mismatch", file=sys.stderr)
            return 1
        result.update(read_mb_per_s=moved / 1e6 / read_s, read_seconds=read_s, seconds=write_s + read_s,
                      mb_per_s=2 * moved / 1e6 / (write_s + read_s),
                      page_cache="writes fsynced; file evicted with posix_fadvise(DONTNEED) before reading")
    if rank == 0:
        keys = ("cb_buffer_size", "romio_cb_write", "romio_ds_write", "cb_nodes", "striping_factor")
        result["hints_in_effect"] = ";".join(f"{k}={used.Get(k)}" for k in keys if used.Get(k) is not None)
        print(json.dumps(result))
        target = os.environ.get("TUNESMITH_RESULT")
        if target:
            Path(target).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
