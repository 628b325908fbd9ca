"""From per-file counter tables (Darshan's counter names) to an ``IOCharacterisation``.

Both readers end here: the Darshan reader hands over PyDarshan's record tables as they are, the strace
reader builds the same POSIX counters from system calls. Each table has one row per (file, rank) record:
``id``, ``rank`` (-1: a shared file whose ranks Darshan reduced to one record) and the module's counters
and time counters merged (``POSIX_BYTES_READ``, ``POSIX_F_READ_TIME``, ...). A missing module or column
counts as zero, so a log without a module still gives a characterisation (and a note says what is missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import (
    SIZE_BINS,
    AccessPattern,
    FileLayout,
    HDF5Usage,
    IOCharacterisation,
    Metadata,
    ModuleSummary,
    MPIIOUsage,
    RankImbalance,
    SizeHistogram,
    StripeLayout,
)
from .suggest import suggest

PREFIX = {"POSIX": "POSIX", "MPI-IO": "MPIIO", "STDIO": "STDIO", "H5F": "H5F", "H5D": "H5D"}
HIST_INFIX = {"POSIX": "SIZE_{op}_", "MPI-IO": "SIZE_{op}_AGG_", "H5D": "SIZE_{op}_AGG_"}
MIB = 1024 * 1024


@dataclass
class TraceTables:
    """What a reader hands over: one pandas DataFrame per module, the Lustre components, job facts."""

    source: str
    frames: dict[str, Any] = field(default_factory=dict)  # module -> DataFrame
    lustre: Any = None  # DataFrame of LUSTRE components, or None
    nprocs: int = 1
    run_time_s: float = 0.0
    exe: str = ""
    hints: str = ""
    source_detail: str = ""
    path: str = ""
    sync_time_s: float | None = None  # seconds in fsync-like calls, where the tracer separates them (strace)
    notes: list[str] = field(default_factory=list)


def _sum(df: Any, column: str) -> float:
    return float(df[column].sum()) if df is not None and column in df.columns else 0.0


def _int(df: Any, column: str) -> int:
    return int(_sum(df, column))


def module_summary(module: str, df: Any) -> ModuleSummary:
    """Bytes, operations and cumulative time of one module's table."""
    p = PREFIX[module]
    return ModuleSummary(
        module=module,
        files=int(df["id"].nunique()) if "id" in df.columns else 0,
        bytes_read=_int(df, f"{p}_BYTES_READ"),
        bytes_written=_int(df, f"{p}_BYTES_WRITTEN"),
        reads=_int(df, f"{p}_READS") + _int(df, f"{p}_INDEP_READS") + _int(df, f"{p}_COLL_READS")
        + _int(df, f"{p}_SPLIT_READS") + _int(df, f"{p}_NB_READS"),
        writes=_int(df, f"{p}_WRITES") + _int(df, f"{p}_INDEP_WRITES") + _int(df, f"{p}_COLL_WRITES")
        + _int(df, f"{p}_SPLIT_WRITES") + _int(df, f"{p}_NB_WRITES"),
        read_time_s=_sum(df, f"{p}_F_READ_TIME"),
        write_time_s=_sum(df, f"{p}_F_WRITE_TIME"),
        meta_time_s=_sum(df, f"{p}_F_META_TIME"),
    )


def histograms(module: str, df: Any) -> list[SizeHistogram]:
    """The read and write size histograms of a module that records them (POSIX, MPI-IO, H5D)."""
    if module not in HIST_INFIX:
        return []
    out = []
    for op in ("read", "write"):
        stem = f"{PREFIX[module]}_{HIST_INFIX[module].format(op=op.upper())}"
        if not any(f"{stem}{b}" in df.columns for b in SIZE_BINS):
            continue
        out.append(SizeHistogram(module=module, op=op, bins={b: _int(df, f"{stem}{b}") for b in SIZE_BINS}))
    return out


def access_pattern(df: Any) -> AccessPattern:
    """Consecutive and sequential POSIX accesses (Darshan's CONSEC and SEQ counters)."""
    return AccessPattern(
        reads=_int(df, "POSIX_READS"), writes=_int(df, "POSIX_WRITES"),
        consecutive_reads=_int(df, "POSIX_CONSEC_READS"), consecutive_writes=_int(df, "POSIX_CONSEC_WRITES"),
        sequential_reads=_int(df, "POSIX_SEQ_READS"), sequential_writes=_int(df, "POSIX_SEQ_WRITES"),
        seeks=_int(df, "POSIX_SEEKS"),
    )


def metadata(frames: dict[str, Any], sync_time: float | None) -> Metadata:
    """Opens, stats, seeks and syncs of the POSIX layer (STDIO's when there is no POSIX), and their rates."""
    posix, stdio = frames.get("POSIX"), frames.get("STDIO")
    if posix is not None and len(posix):
        df, p = posix, "POSIX"
        fsyncs = _int(df, "POSIX_FSYNCS") + _int(df, "POSIX_FDSYNCS")
    else:
        df, p, fsyncs = stdio, "STDIO", 0
    opens, stats, seeks = _int(df, f"{p}_OPENS") + _int(df, f"{p}_FDOPENS"), _int(df, f"{p}_STATS"), _int(df, f"{p}_SEEKS")
    creates, unlinks = _int(df, "POSIX_CREATES"), _int(df, "POSIX_UNLINKS")
    renames = _int(df, "POSIX_RENAME_SOURCES")
    ops = _int(df, f"{p}_READS") + _int(df, f"{p}_WRITES")
    writes = _int(df, f"{p}_WRITES")
    moved = (_sum(df, f"{p}_BYTES_READ") + _sum(df, f"{p}_BYTES_WRITTEN")) / MIB
    meta_ops = opens + stats + fsyncs + creates + unlinks + renames
    return Metadata(
        opens=opens, stats=stats, seeks=seeks, fsyncs=fsyncs, creates=creates, unlinks=unlinks, renames=renames,
        meta_time_s=_sum(df, f"{p}_F_META_TIME"), sync_time_s=sync_time,
        ops_per_mib=meta_ops / moved if moved else float(meta_ops),
        ops_per_access=meta_ops / ops if ops else float(meta_ops),
        fsyncs_per_write=fsyncs / writes if writes else float(fsyncs),
        fsyncs_per_mib=fsyncs / moved if moved else float(fsyncs),
    )


def file_layout(df: Any, module: str, nprocs: int) -> FileLayout:
    """Shared files (a reduced record, or one file in several ranks' records) against per-process ones.

    With one process every file is its own (Darshan reduces single-process records to rank -1 too).
    """
    if df is None or not len(df) or "id" not in df.columns:
        return FileLayout()
    if nprocs < 2:
        df = df.assign(rank=0)
    p = PREFIX[module]
    moved = df.get(f"{p}_BYTES_READ", 0) + df.get(f"{p}_BYTES_WRITTEN", 0)
    ranks_per_file = df.groupby("id")["rank"].nunique()
    reduced = set(df.loc[df["rank"] < 0, "id"])
    shared_ids = reduced | set(ranks_per_file[ranks_per_file > 1].index)
    is_shared = df["id"].isin(shared_ids)
    return FileLayout(
        files=int(df["id"].nunique()),
        shared_files=len(shared_ids),
        unique_files=int(df["id"].nunique()) - len(shared_ids),
        shared_bytes=int(moved[is_shared].sum()) if hasattr(moved, "__getitem__") else 0,
        unique_bytes=int(moved[~is_shared].sum()) if hasattr(moved, "__getitem__") else 0,
    )


def mpiio_usage(df: Any, hints: str) -> MPIIOUsage:
    """Collective, independent, split and non-blocking MPI-IO calls."""
    return MPIIOUsage(
        collective_reads=_int(df, "MPIIO_COLL_READS"), collective_writes=_int(df, "MPIIO_COLL_WRITES"),
        independent_reads=_int(df, "MPIIO_INDEP_READS"), independent_writes=_int(df, "MPIIO_INDEP_WRITES"),
        nonblocking=_int(df, "MPIIO_NB_READS") + _int(df, "MPIIO_NB_WRITES"),
        split=_int(df, "MPIIO_SPLIT_READS") + _int(df, "MPIIO_SPLIT_WRITES"),
        collective_opens=_int(df, "MPIIO_COLL_OPENS"), independent_opens=_int(df, "MPIIO_INDEP_OPENS"),
        hints=hints,
    )


def hdf5_usage(h5f: Any, h5d: Any) -> HDF5Usage:
    """HDF5 file and dataset counters: accesses, bytes, chunk shapes, collective transfers."""
    shapes: list[list[int]] = []
    chunked = collective = 0
    if h5d is not None and len(h5d):
        dims = [c for c in (f"H5D_CHUNK_SIZE_D{i}" for i in range(1, 6)) if c in h5d.columns]
        for _, row in h5d.iterrows():
            shape = [int(row[c]) for c in dims if row[c] > 0]
            if shape:
                chunked += 1
                if shape not in shapes and len(shapes) < 5:
                    shapes.append(shape)
            collective += int(row.get("H5D_USE_MPIIO_COLLECTIVE", 0) > 0)
    return HDF5Usage(
        files=int(h5f["id"].nunique()) if h5f is not None and len(h5f) else 0,
        file_opens=_int(h5f, "H5F_OPENS"), file_flushes=_int(h5f, "H5F_FLUSHES"),
        datasets=int(h5d["id"].nunique()) if h5d is not None and len(h5d) else 0,
        dataset_reads=_int(h5d, "H5D_READS"), dataset_writes=_int(h5d, "H5D_WRITES"),
        bytes_read=_int(h5d, "H5D_BYTES_READ"), bytes_written=_int(h5d, "H5D_BYTES_WRITTEN"),
        chunked_datasets=chunked, chunk_shapes=shapes, collective_datasets=collective,
        meta_time_s=_sum(h5f, "H5F_F_META_TIME") + _sum(h5d, "H5D_F_META_TIME"),
    )


def stripe_layout(df: Any) -> StripeLayout:
    """Distinct stripe sizes, counts, OSTs and pools of the LUSTRE components."""
    osts: set[int] = set()
    for value in df.get("LUSTRE_OST_IDS", []):
        if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, str):
            osts.update(int(v) for v in value)
    pools = sorted({str(v) for v in df.get("LUSTRE_POOL_NAME", []) if str(v) not in ("", "-1", "nan")})
    return StripeLayout(
        files=int(df["id"].nunique()) if "id" in df.columns else len(df),
        stripe_sizes=sorted({int(v) for v in df.get("LUSTRE_COMP_STRIPE_SIZE", []) if v > 0}),
        stripe_counts=sorted({int(v) for v in df.get("LUSTRE_COMP_STRIPE_COUNT", []) if v > 0}),
        osts=len(osts), pools=pools,
    )


def rank_imbalance(df: Any, module: str, nprocs: int) -> RankImbalance | None:
    """The slowest rank's I/O time against the mean over ``nprocs`` ranks (None for one process)."""
    if df is None or not len(df) or nprocs < 2:
        return None
    p = PREFIX[module]
    cols = [c for c in (f"{p}_F_READ_TIME", f"{p}_F_WRITE_TIME", f"{p}_F_META_TIME") if c in df.columns]
    if not cols:
        return None
    time = df[cols].sum(axis=1)
    mine = df["rank"] >= 0
    per_rank = time[mine].groupby(df.loc[mine, "rank"]).sum()
    shared_total = float(time[~mine].sum())
    slowest_shared = _sum(df.loc[~mine], f"{p}_F_SLOWEST_RANK_TIME") or shared_total / nprocs
    mean = (float(per_rank.sum()) + shared_total) / nprocs
    if mean <= 0:
        return None
    top = int(per_rank.idxmax()) if len(per_rank) else None
    slowest = (float(per_rank.max()) if len(per_rank) else 0.0) + slowest_shared
    if top is None and f"{p}_SLOWEST_RANK" in df.columns and (~mine).any():
        top = int(df.loc[~mine, f"{p}_SLOWEST_RANK"].iloc[0])
    return RankImbalance(ranks=nprocs, slowest_rank=top, slowest_s=max(slowest, mean), mean_s=mean)


def characterise(tables: TraceTables) -> IOCharacterisation:
    """The characterisation of ``tables``, with ranked suggestions; missing modules become notes."""
    frames = {m: df for m, df in tables.frames.items() if df is not None}
    notes = list(tables.notes)
    modules, hists = [], []
    for name in ("POSIX", "MPI-IO", "STDIO", "H5F", "H5D"):
        df = frames.get(name)
        if df is None:
            continue
        if name != "H5F":
            modules.append(module_summary(name, df))
        hists += histograms(name, df)
    posix = frames.get("POSIX")
    if posix is None:
        notes.append("no POSIX module: access pattern, syncs and size histograms of the POSIX layer unavailable")
    base = "POSIX" if posix is not None and len(posix) else ("STDIO" if "STDIO" in frames else None)
    char = IOCharacterisation(
        source=tables.source,  # type: ignore[arg-type]
        source_detail=tables.source_detail, path=tables.path, exe=tables.exe,
        nprocs=max(1, tables.nprocs), run_time_s=tables.run_time_s,
        modules=modules, histograms=hists,
        access=access_pattern(posix) if posix is not None else AccessPattern(),
        metadata=metadata(frames, tables.sync_time_s),
        layout=file_layout(frames.get(base), base, tables.nprocs) if base else FileLayout(),
        mpiio=mpiio_usage(frames["MPI-IO"], tables.hints) if "MPI-IO" in frames else None,
        hdf5=hdf5_usage(frames.get("H5F"), frames.get("H5D")) if "H5F" in frames or "H5D" in frames else None,
        lustre=stripe_layout(tables.lustre) if tables.lustre is not None and len(tables.lustre) else None,
        imbalance=rank_imbalance(frames.get(base), base, tables.nprocs) if base else None,
        notes=notes,
    )
    return char.model_copy(update={"suggestions": suggest(char)})
