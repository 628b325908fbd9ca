"""Ranked suggestions from a characterisation: what to tune first, and the numbers that say why.

Each rule looks at one symptom and, when it is present, gives a ``Suggestion`` with a ``category`` (what
kind of setting would help: ``fsync_policy``, ``transfer_size``, ``metadata``, ``collective_buffering``,
``striping``, ``hdf5_layout``, ``read_ahead``, ``imbalance``), a reason built from the measured numbers,
and a score from 0 to 1. Where the trace has the time (strace always, Darshan per layer) the score is the
share of the I/O time the symptom accounts for; otherwise it comes from counts. Suggestions are ranked by
score, highest first. ``CATEGORY_WORDS`` lists the words that find a category's parameters in a space.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import Suggestion

if TYPE_CHECKING:
    from .model import IOCharacterisation

MIB = 1024 * 1024
MIN_OPS = 16  # fewer reads and writes than this are too few to call a pattern

# category -> (words that name its parameters, strongest first). Matched against a parameter's name,
# its help text and the quoted text of its source (see priorities.py).
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "fsync_policy": ("fsync", "fdatasync", "sync", "durab", "commit", "flush"),
    "transfer_size": ("transfer", "xfer", "buffer", "batch", "block", "chunk_kib", "bufsize", "write_size",
                      "request", "aggregat", "size"),
    "metadata": ("files_per_dir", "fanout", "fan_out", "stat", "open", "create", "dir", "files"),
    "collective_buffering": ("collective", "romio_cb", "cb_", "aggregator", "cb_nodes", "cb_buffer", "two_phase"),
    "striping": ("stripe", "striping", "lfs", "ost"),
    "hdf5_layout": ("chunk", "align", "meta_block", "cache", "rdcc", "sieve"),
    "read_ahead": ("read_ahead", "readahead", "fadvise", "prefetch", "sieving", "ds_read", "romio_ds"),
    "imbalance": ("aggregator", "cb_nodes", "threads", "ranks", "balance"),
}


def _share(part: float, whole: float) -> float:
    return max(0.0, min(1.0, part / whole)) if whole > 0 else 0.0


def _fsync(c: IOCharacterisation) -> Suggestion | None:
    md = c.metadata
    writes = c.access.writes or sum(m.writes for m in c.modules if m.module in ("POSIX", "STDIO"))
    if md.fsyncs < 2 or (writes and md.fsyncs / writes < 0.05):
        return None
    every = f"one per {writes / md.fsyncs:.1f} writes" if writes else "with no writes"
    if md.sync_time_s is not None and c.io_time_s > 0:
        score = _share(md.sync_time_s, c.io_time_s)
        took = f"; they took {score:.0%} of the time in I/O calls ({md.sync_time_s:.3g} s)"
    else:
        score = min(0.9, 0.3 + md.fsyncs_per_write)
        took = ""
    reason = f"{md.fsyncs} fsync/fdatasync calls for {writes} writes ({every}){took}"
    return Suggestion(category="fsync_policy", title="sync less often (group commit, fsync at the end)",
                      reason=reason, score=score)


def _small(c: IOCharacterisation) -> Suggestion | None:
    small = c.small_share
    ops = c.access.reads + c.access.writes
    if small is None or small < 0.5 or ops < MIN_OPS:
        return None
    moved = c.bytes_read + c.bytes_written
    mean = moved / ops if ops else 0
    data = c.data_module
    data_time = (data.read_time_s + data.write_time_s) if data else 0.0
    data_time -= c.metadata.sync_time_s or 0.0  # strace separates the syncs, which a larger transfer keeps
    score = 0.9 * small * min(1.0, ops / 256) * max(0.3, _share(data_time, c.io_time_s))
    reason = f"{small:.0%} of {ops} reads and writes are under 100 KiB (mean {mean / 1024:.1f} KiB)"
    return Suggestion(category="transfer_size", title="larger transfers: raise the transfer size, buffer or batch writes",
                      reason=reason, score=score)


def _metadata(c: IOCharacterisation) -> Suggestion | None:
    md = c.metadata
    meta_ops = md.opens + md.stats + md.creates + md.unlinks + md.renames
    if meta_ops < MIN_OPS:
        return None
    time_share = _share(md.meta_time_s, c.io_time_s)
    if time_share < 0.3 and md.ops_per_access < 0.5:
        return None
    timed = c.io_time_s > 0 and (md.meta_time_s > 0 or md.sync_time_s is not None)
    # measured time ranks it against the other symptoms (fsyncs, small transfers); counts only without it
    score = time_share if timed else min(0.8, md.ops_per_access / 4)
    reason = (f"{md.opens} opens, {md.stats} stats, {md.creates + md.unlinks} creates/unlinks for "
              f"{c.access.reads + c.access.writes} reads and writes over {c.layout.files} files; "
              f"metadata took {time_share:.0%} of the I/O time")
    return Suggestion(category="metadata", title="fewer opens and stats: fewer, larger files; spread directories",
                      reason=reason, score=score)


def _shared(c: IOCharacterisation) -> list[Suggestion]:
    out: list[Suggestion] = []
    if c.nprocs < 2 or not c.layout.shared_files:
        return out
    m = c.mpiio
    coll = m.collective_share if m else None
    if m is not None and coll is not None and coll < 0.5:
        indep = m.independent_reads + m.independent_writes
        reason = (f"{c.layout.shared_files} shared file(s) written by {c.nprocs} ranks with {indep} independent "
                  f"MPI-IO calls ({1 - coll:.0%} of them)")
        out.append(Suggestion(category="collective_buffering", title="collective I/O with collective buffering",
                              reason=reason, score=0.6 * (1 - coll)))
    elif m is None:
        reason = f"{c.layout.shared_files} shared file(s) accessed by {c.nprocs} processes through POSIX calls"
        out.append(Suggestion(category="collective_buffering", title="go through MPI-IO collective calls",
                              reason=reason, score=0.3))
    lustre = c.lustre
    if lustre is not None and lustre.stripe_counts and max(lustre.stripe_counts) < min(c.nprocs, 8):
        reason = (f"shared file(s) of {c.nprocs} ranks striped over {max(lustre.stripe_counts)} OST(s) "
                  f"(stripe size {min(lustre.stripe_sizes or [0]) // 1024} KiB)")
        out.append(Suggestion(category="striping", title="stripe the shared file over more OSTs",
                              reason=reason, score=0.5))
    return out


def _hdf5(c: IOCharacterisation) -> Suggestion | None:
    h = c.hdf5
    if h is None or not (h.dataset_reads + h.dataset_writes):
        return None
    mean = h.mean_access_bytes or 0
    if mean >= MIB and not c.access.writes:
        return None
    small = mean < MIB
    unaligned = False
    if not small and c.small_share is not None and c.small_share > 0.5:
        unaligned = True
    if not (small or unaligned):
        return None
    layout = f"{h.chunked_datasets} chunked dataset(s) {h.chunk_shapes[:2]}" if h.chunked_datasets else "contiguous datasets"
    reason = (f"{h.dataset_reads + h.dataset_writes} dataset accesses of {mean / 1024:.0f} KiB on average, "
              f"{layout}")
    return Suggestion(category="hdf5_layout", title="HDF5 chunk shape, alignment and chunk cache",
                      reason=reason, score=0.5 if small else 0.35)


def _random(c: IOCharacterisation) -> Suggestion | None:
    a = c.access
    if a.reads < MIN_OPS:
        return None
    seq = a.sequential_reads / a.reads
    if seq >= 0.5:
        return None
    reason = f"{1 - seq:.0%} of {a.reads} reads are not sequential ({a.seeks} seeks)"
    return Suggestion(category="read_ahead", title="random reads: read-ahead, fadvise, data sieving",
                      reason=reason, score=0.4 * (1 - seq) * _share(c.bytes_read, c.bytes_read + c.bytes_written))


def _imbalance(c: IOCharacterisation) -> Suggestion | None:
    im = c.imbalance
    if im is None or im.ratio < 1.5:
        return None
    who = f"rank {im.slowest_rank}" if im.slowest_rank is not None else "the slowest rank"
    reason = f"{who} spent {im.slowest_s:.3g} s in I/O against a mean of {im.mean_s:.3g} s over {im.ranks} ranks"
    return Suggestion(category="imbalance", title="balance the I/O over ranks (aggregators, even decomposition)",
                      reason=reason, score=min(0.6, 0.1 * im.ratio))


def suggest(c: IOCharacterisation) -> list[Suggestion]:
    """Every suggestion whose symptom the characterisation shows, highest score first, ranked from 1."""
    found: list[Suggestion] = []
    for rule in (_fsync, _small, _metadata, _hdf5, _random, _imbalance):
        s = rule(c)
        if s is not None:
            found.append(s)
    found += _shared(c)
    found.sort(key=lambda s: -s.score)
    return [s.model_copy(update={"rank": i, "score": round(s.score, 4)}) for i, s in enumerate(found, start=1)]
