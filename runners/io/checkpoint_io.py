"""The ``checkpoint_io`` target: tune how a model checkpoint is written durably to local storage.

A preset of ``CommandTarget`` for the bundled writer ``examples/checkpoint_io/write_checkpoint.py``:
it writes a transformer-shaped state dict of float32 tensors as safetensors files, times the write up to
the point where it is durable, then reads it back and checks every tensor's CRC-32. The knobs are the
ones a storage engineer reaches for: O_DIRECT, when to fsync, the write size, writer threads and the
file layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from ..space import Param, SearchSpace
from .command import CommandTarget, StorageWorkload

BUNDLED_SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "checkpoint_io" / "write_checkpoint.py"

# Parameter names by expected impact on a durable write of a large checkpoint, with the reason for each.
IMPACT: dict[str, str] = {
    "direct": "O_DIRECT skips the page-cache copy and the writeback burst at fsync; often the largest "
    "single change for big sequential durable writes, but some file systems refuse it",
    "fsync": "forcing durability after every write turns each chunk into a device flush; one fsync per "
    "file or one syncfs at the end lets the device merge the writes",
    "chunk_kib": "the request size the storage sees under O_DIRECT or per-chunk fsync; buffered, it only "
    "changes the number of system calls",
    "threads": "more writers keep more requests in flight and copy in parallel; bounded by the cores and "
    "by one device's queue",
    "layout": "one shard per thread gives each writer its own file (no shared inode lock, parallel fsyncs); "
    "one file is what most loaders expect",
}


class CheckpointWorkload(StorageWorkload):
    """The ``[workload]`` table of the ``checkpoint_io`` target."""

    script: str | None = None  # default: the bundled write_checkpoint.py
    size_mb: int = Field(256, ge=1, le=1_048_576)  # checkpoint size in MiB
    seed: int = 0  # tensor values; the same seed writes the same bytes


class CheckpointIOTarget(CommandTarget):
    """Tunes the bundled checkpoint writer: threads, write size, fsync policy, layout and O_DIRECT.

    The baseline is what a careful but naive writer does (see ``base_space``); every configuration ends
    with the checkpoint durable, so none can win by leaving data in the page cache.
    """

    name: ClassVar[str] = "checkpoint_io"
    domain: ClassVar[str] = "io"
    workload_model: ClassVar[type[BaseModel]] = CheckpointWorkload
    workload_drops_caches: ClassVar[bool] = (
        True  # the writer drops it after its own start-up, just before timing
    )
    shared_resource: ClassVar[str | None] = "disk"  # concurrent candidates would time each other's writes

    def script_path(self) -> Path:
        return self.job.resolve(self.workload.script) if self.workload.script else BUNDLED_SCRIPT

    def command_template(self) -> list[str]:
        w = self.workload
        argv = ["{python}", str(self.script_path()), "--out", "{out}", "--size-mb", str(w.size_mb)]
        argv += ["--seed", str(w.seed), "--threads", "{threads}", "--chunk-kib", "{chunk_kib}"]
        argv += ["--fsync", "{fsync}", "--layout", "{layout}", "{direct}"]
        return argv + (["--drop-caches"] if w.drop_caches else [])

    def base_space(self) -> SearchSpace:
        # Defaults = a plain writer that a careful user would write by hand: one thread, one file,
        # buffered writes of 1 MiB (torch.save hands the kernel whole tensor storages of several MiB,
        # so a 64 KiB default would be a strawman), and one fsync per file at the end so that the
        # checkpoint is durable (torch.save alone never fsyncs). No O_DIRECT: it needs aligned buffers.
        params = (
            Param(
                name="direct", kind="bool", default=False, help="open with O_DIRECT (page-aligned buffers)"
            ),
            Param(
                name="fsync",
                kind="choice",
                default="per_file",
                values=("per_chunk", "per_file", "end_syncfs"),
                help="when durability is forced: after every write, once per file, or one syncfs at the end",
            ),
            Param(
                name="chunk_kib",
                kind="choice",
                default=1024,
                values=(64, 256, 1024, 4096, 16384, 65536),
                help="bytes per write call, in KiB (each writer thread holds one buffer of this size)",
            ),
            Param(name="threads", kind="pow2", default=1, low=1, high=8, help="writer threads"),
            Param(
                name="layout",
                kind="choice",
                default="single",
                values=("single", "shards"),
                help="one safetensors file written by all threads, or one shard per thread plus an index",
            ),
        )
        return SearchSpace(params=params, constraints=("not direct or chunk_kib % 4 == 0",))

    def rules(self) -> list[str]:
        names = self.space().names
        return [n for n in IMPACT if n in names] + [n for n in names if n not in IMPACT]

    def describe(self) -> str:
        lines = [super().describe(), "expected impact, highest first:"]
        lines += [f"{i}. {n}: {IMPACT[n]}" for i, n in enumerate(self.rules(), start=1) if n in IMPACT]
        return "\n".join(lines)

    def signature(self) -> str:
        fs = self.fingerprint()["filesystem"]["fstype"]
        return f"{self.domain}/checkpoint size={self.workload.size_mb}MB fs={fs}"
