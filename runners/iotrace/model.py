"""The characterisation of a workload's I/O: what a Darshan log or a strace capture says it did.

``IOCharacterisation`` is one typed summary whatever the source (``source`` says which one: ``darshan`` for
a Darshan log, ``strace`` for the system-call fallback): bytes and time per module, access-size
histograms, sequential vs random access, the read/write mix, shared files vs a file per process,
metadata intensity, collective vs independent MPI-IO, the Lustre stripe layout, the ranks' imbalance, and
the suggestions ranked by how much of the I/O they address. ``to_metrics`` flattens it into the numbers an
observer adds to a trial's measurement (``iotrace.*``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import TunesmithError

SIZE_BINS = ("0_100", "100_1K", "1K_10K", "10K_100K", "100K_1M", "1M_4M", "4M_10M", "10M_100M", "100M_1G", "1G_PLUS")
BIN_LIMITS = (100, 1024, 10 * 1024, 100 * 1024, 1024**2, 4 * 1024**2, 10 * 1024**2, 100 * 1024**2, 1024**3)
SMALL_BINS = SIZE_BINS[:4]  # accesses under 100 KiB count as small
MODULES = ("POSIX", "MPI-IO", "STDIO", "H5F", "H5D", "LUSTRE")
METRIC_PREFIX = "iotrace"


class TraceError(TunesmithError):
    """A trace that cannot be read: missing, not a Darshan log or strace output, or empty."""

    exit_code = 2


def size_bin(nbytes: int) -> str:
    """The Darshan histogram bin an access of ``nbytes`` falls in (``0_100`` ... ``1G_PLUS``)."""
    for label, limit in zip(SIZE_BINS, BIN_LIMITS, strict=False):
        if nbytes < limit:
            return label
    return SIZE_BINS[-1]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModuleSummary(_Model):
    """Bytes, operations and time of one instrumentation module (POSIX, MPI-IO, STDIO, H5F, H5D).

    Times are summed over every file record and rank (cumulative seconds spent in the calls).
    """

    module: str
    files: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    reads: int = 0
    writes: int = 0
    read_time_s: float = 0.0
    write_time_s: float = 0.0
    meta_time_s: float = 0.0

    @property
    def time_s(self) -> float:
        return self.read_time_s + self.write_time_s + self.meta_time_s


class SizeHistogram(_Model):
    """How many accesses of one module and direction fell in each Darshan size bin."""

    module: str
    op: Literal["read", "write"]
    bins: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.bins.values())

    @property
    def small_share(self) -> float:
        """The share of accesses under 100 KiB (0 when there were none)."""
        return sum(self.bins.get(b, 0) for b in SMALL_BINS) / self.total if self.total else 0.0


class AccessPattern(_Model):
    """Sequential and consecutive accesses of the POSIX layer, as Darshan counts them.

    Consecutive: the access starts exactly where the previous one on the file ended; sequential: it starts
    beyond the previous one's start (consecutive ones included). The rest are random (backwards or strided).
    """

    reads: int = 0
    writes: int = 0
    consecutive_reads: int = 0
    consecutive_writes: int = 0
    sequential_reads: int = 0
    sequential_writes: int = 0
    seeks: int = 0

    @property
    def sequential_share(self) -> float | None:
        ops = self.reads + self.writes
        return (self.sequential_reads + self.sequential_writes) / ops if ops else None


class Metadata(_Model):
    """Metadata operations of the POSIX (else STDIO) layer and how intense they are."""

    opens: int = 0
    stats: int = 0
    seeks: int = 0
    fsyncs: int = 0  # fsync and fdatasync (and syncfs / sync_file_range from strace)
    creates: int = 0  # strace only: opens with O_CREAT, mkdir
    unlinks: int = 0  # strace only: unlink, rmdir
    renames: int = 0
    meta_time_s: float = 0.0
    sync_time_s: float | None = None  # strace only; Darshan counts fsync time as write time
    ops_per_mib: float = 0.0  # metadata operations per MiB moved
    ops_per_access: float = 0.0  # metadata operations per read or write
    fsyncs_per_write: float = 0.0
    fsyncs_per_mib: float = 0.0


class FileLayout(_Model):
    """Shared files (opened by several ranks or processes) against a file per process."""

    files: int = 0
    shared_files: int = 0
    unique_files: int = 0
    shared_bytes: int = 0
    unique_bytes: int = 0

    @property
    def kind(self) -> str:
        """``shared``, ``file-per-process``, ``mixed`` or ``none``."""
        if not self.files:
            return "none"
        if self.shared_bytes and self.unique_bytes:
            return "mixed"
        if self.shared_files and (self.shared_bytes or not self.unique_bytes):
            return "shared"
        return "file-per-process"


class MPIIOUsage(_Model):
    """Collective against independent MPI-IO calls, and the ROMIO hints the log recorded."""

    collective_reads: int = 0
    collective_writes: int = 0
    independent_reads: int = 0
    independent_writes: int = 0
    nonblocking: int = 0
    split: int = 0
    collective_opens: int = 0
    independent_opens: int = 0
    hints: str = ""

    @property
    def collective_share(self) -> float | None:
        coll = self.collective_reads + self.collective_writes
        total = coll + self.independent_reads + self.independent_writes + self.nonblocking + self.split
        return coll / total if total else None


class HDF5Usage(_Model):
    """HDF5 files and datasets: accesses, their mean size, chunking and collective transfers."""

    files: int = 0
    file_opens: int = 0
    file_flushes: int = 0
    datasets: int = 0
    dataset_reads: int = 0
    dataset_writes: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    chunked_datasets: int = 0
    chunk_shapes: list[list[int]] = Field(default_factory=list)  # up to 5 distinct
    collective_datasets: int = 0
    meta_time_s: float = 0.0

    @property
    def mean_access_bytes(self) -> float | None:
        ops = self.dataset_reads + self.dataset_writes
        return (self.bytes_read + self.bytes_written) / ops if ops else None


class StripeLayout(_Model):
    """The Lustre stripe settings the LUSTRE module recorded for the files."""

    files: int = 0
    stripe_sizes: list[int] = Field(default_factory=list)  # distinct values, bytes
    stripe_counts: list[int] = Field(default_factory=list)  # distinct values
    osts: int = 0  # distinct OSTs the files were striped over
    pools: list[str] = Field(default_factory=list)


class RankImbalance(_Model):
    """How unevenly the ranks (or traced processes) spent their I/O time."""

    ranks: int
    slowest_rank: int | None = None
    slowest_s: float
    mean_s: float

    @property
    def ratio(self) -> float:
        return self.slowest_s / self.mean_s if self.mean_s > 0 else 1.0


class Suggestion(_Model):
    """One ranked suggestion: what to tune (``category``), why (the numbers), and how strongly (0..1)."""

    rank: int = 0
    category: str
    title: str
    reason: str
    score: float


class IOCharacterisation(_Model):
    """Everything the trace says about a workload's I/O, and the suggestions that follow from it."""

    source: Literal["darshan", "strace"]
    source_detail: str = ""  # e.g. "Darshan 3.2.1 log", "strace 6.1, 3 processes"
    path: str = ""
    exe: str = ""
    nprocs: int = 1
    run_time_s: float = 0.0
    modules: list[ModuleSummary] = Field(default_factory=list)
    histograms: list[SizeHistogram] = Field(default_factory=list)
    access: AccessPattern = Field(default_factory=AccessPattern)
    metadata: Metadata = Field(default_factory=Metadata)
    layout: FileLayout = Field(default_factory=FileLayout)
    mpiio: MPIIOUsage | None = None
    hdf5: HDF5Usage | None = None
    lustre: StripeLayout | None = None
    imbalance: RankImbalance | None = None
    suggestions: list[Suggestion] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # what was missing or could not be read

    def module(self, name: str) -> ModuleSummary | None:
        """The summary of one module, or None when the trace has none."""
        return next((m for m in self.modules if m.module == name), None)

    @property
    def data_module(self) -> ModuleSummary | None:
        """The lowest layer with data: POSIX, else STDIO, else MPI-IO (what the totals are taken from)."""
        for name in ("POSIX", "STDIO", "MPI-IO", "H5D"):
            m = self.module(name)
            if m is not None and (m.reads or m.writes or m.bytes_read or m.bytes_written):
                return m
        return None

    @property
    def bytes_read(self) -> int:
        return sum(m.bytes_read for m in self.modules if m.module in ("POSIX", "STDIO"))

    @property
    def bytes_written(self) -> int:
        return sum(m.bytes_written for m in self.modules if m.module in ("POSIX", "STDIO"))

    @property
    def io_time_s(self) -> float:
        """Cumulative seconds in POSIX and STDIO calls (the layers every upper layer ends in)."""
        return sum(m.time_s for m in self.modules if m.module in ("POSIX", "STDIO"))

    @property
    def read_share(self) -> float | None:
        """Bytes read as a share of all bytes moved (None when nothing moved)."""
        total = self.bytes_read + self.bytes_written
        return self.bytes_read / total if total else None

    def histogram(self, module: str, op: str) -> SizeHistogram | None:
        return next((h for h in self.histograms if h.module == module and h.op == op), None)

    @property
    def small_share(self) -> float | None:
        """Share of POSIX (else STDIO-less MPI-IO) accesses under 100 KiB; None without a histogram."""
        for module in ("POSIX", "MPI-IO", "H5D"):
            hs = [h for h in (self.histogram(module, "read"), self.histogram(module, "write")) if h and h.total]
            if hs:
                total = sum(h.total for h in hs)
                return sum(h.small_share * h.total for h in hs) / total
        return None

    def to_metrics(self) -> dict[str, float]:
        """Flat ``iotrace.*`` numbers for a measurement (suggestion scores as ``iotrace.suggest.<category>``)."""
        p = METRIC_PREFIX
        out: dict[str, float] = {
            f"{p}.bytes_read": float(self.bytes_read),
            f"{p}.bytes_written": float(self.bytes_written),
            f"{p}.io_time_s": self.io_time_s,
            f"{p}.nprocs": float(self.nprocs),
            f"{p}.files": float(self.layout.files),
            f"{p}.shared_files": float(self.layout.shared_files),
            f"{p}.opens": float(self.metadata.opens),
            f"{p}.stats": float(self.metadata.stats),
            f"{p}.seeks": float(self.metadata.seeks),
            f"{p}.fsyncs": float(self.metadata.fsyncs),
            f"{p}.meta_time_s": self.metadata.meta_time_s,
            f"{p}.fsyncs_per_write": self.metadata.fsyncs_per_write,
            f"{p}.meta_ops_per_mib": self.metadata.ops_per_mib,
            f"{p}.source_darshan": 1.0 if self.source == "darshan" else 0.0,
        }
        for key, value in (
            ("reads", self.access.reads), ("writes", self.access.writes),
            ("small_share", self.small_share), ("sequential_share", self.access.sequential_share),
            ("read_share", self.read_share), ("sync_time_s", self.metadata.sync_time_s),
            ("imbalance", self.imbalance.ratio if self.imbalance else None),
            ("mpiio_collective_share", self.mpiio.collective_share if self.mpiio else None),
        ):
            if value is not None:
                out[f"{p}.{key}"] = float(value)
        if self.io_time_s > 0:
            moved = (self.bytes_read + self.bytes_written) / 1e6
            out[f"{p}.mb_per_io_s"] = moved / self.io_time_s
        for s in self.suggestions:
            out[f"{p}.suggest.{s.category}"] = s.score
        return out
