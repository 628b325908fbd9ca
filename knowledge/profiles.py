"""Profiles as knowledge: Nsight Compute, Darshan, strace and torch profiler output as compact summaries.

A ``ProfileSummary`` is what a person or an LLM reads about one profile (a few lines of ``text``), a
``bottleneck`` label and numeric ``features`` under stable names (the same name means the same thing in
every summary of a kind, so summaries can be compared number by number). ``summarise_ncu`` takes the
kernels of an Nsight Compute CSV, ``summarise_io`` an I/O characterisation (a Darshan log or a strace
capture), ``summarise_torch`` a torch.profiler chrome trace or ``key_averages()`` table.

``index_profile`` adds a summary to the knowledge store's ``profiles`` collection (features in the
metadata as ``f_<name>`` so they can be filtered), ``similar_profiles`` finds the nearest stored ones by
text and by feature distance, and ``index_study_profiles`` summarises and indexes what the observers left
on a finished study's trials.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tunesmith.knowledge.vector.store import KnowledgeStore, Record

Kind = Literal["ncu", "darshan", "strace", "torch_profiler"]
FAMILY = {"ncu": "gpu", "darshan": "io", "strace": "io", "torch_profiler": "ops"}
FEATURE_PREFIX = "f_"
TEXT_WEIGHT = 0.5  # weight of text similarity against feature closeness in similar_profiles


class ProfileSummary(BaseModel):
    """One profile condensed: its kind, a short text, a bottleneck label and numeric features."""

    kind: Kind
    text: str
    bottleneck: str
    features: dict[str, float] = Field(default_factory=dict)
    source: str = Field("", description="where the profile came from (a file, or trial metrics)")


# -- Nsight Compute ---------------------------------------------------------------------------------
_NCU_FEATURES = {"occupancy_pct": "achieved_occupancy_pct", "theoretical_occupancy_pct": "theoretical_occupancy_pct",
                 "dram_throughput_pct": "dram_throughput_pct", "l2_throughput_pct": "l2_throughput_pct",
                 "l2_hit_pct": "l2_hit_pct", "l1_hit_pct": "l1_hit_pct", "sm_throughput_pct": "sm_throughput_pct",
                 "registers_per_thread": "registers_per_thread", "pipe_tensor_pct": "tensor_pipe_pct"}


def summarise_ncu(kernels: list[dict[str, Any]], source: str = "") -> ProfileSummary:
    """The longest kernel's counters (``parse_csv`` rows, or ``ncu.*`` metrics without the prefix)."""
    from tunesmith.runners.observers.ncu import digest_kernel, verdict

    if not kernels:
        raise ValueError("no Nsight Compute kernel rows to summarise")
    top = max(kernels, key=lambda k: k.get("time_ns", 0.0))
    top = {"kernel": "kernel", **top}
    feats = {name: float(top[key]) for key, name in _NCU_FEATURES.items() if isinstance(top.get(key), (int, float))}
    stalls = {n[6:]: float(v) for n, v in top.items() if n.startswith("stall_") and isinstance(v, (int, float))}
    if stalls and sum(stalls.values()) > 0:
        worst = max(stalls, key=lambda n: stalls[n])
        feats["top_stall_share"] = stalls[worst] / sum(stalls.values())
    feats["kernel_time_us"] = float(top.get("time_ns", 0.0)) / 1e3
    feats["kernels"] = float(top.get("kernels", len(kernels)))
    label = verdict(top).split(" ", 1)[0]
    if label == "latency-bound" and stalls:
        label = f"latency-bound ({max(stalls, key=lambda n: stalls[n])} stalls)"
    return ProfileSummary(kind="ncu", text=f"GPU kernel profile, {label}: " + digest_kernel(top),
                          bottleneck=label, features=feats, source=source)


def summarise_ncu_csv(path: str | Path) -> ProfileSummary:
    """A summary of an ncu ``--csv`` log (raw page or details layout)."""
    from tunesmith.runners.observers.ncu import parse_csv

    return summarise_ncu(parse_csv(Path(path).read_text(encoding="utf-8", errors="replace")), source=str(path))


# -- I/O (Darshan or strace) ------------------------------------------------------------------------
def summarise_io(char: Any, source: str = "") -> ProfileSummary:
    """A summary of an ``IOCharacterisation`` (runners/iotrace): volume, access shapes, metadata, MPI-IO."""
    moved = char.bytes_read + char.bytes_written
    feats: dict[str, float] = {"bytes": float(moved), "nprocs": float(char.nprocs), "files": float(char.layout.files),
                               "fsyncs_per_write": char.metadata.fsyncs_per_write,
                               "meta_ops_per_mib": char.metadata.ops_per_mib}
    if char.io_time_s > 0:
        feats["metadata_time_share"] = min(1.0, char.metadata.meta_time_s / char.io_time_s)
        feats["mb_per_io_s"] = moved / 1e6 / char.io_time_s
    for name, value in (("small_access_share", char.small_share), ("sequential_share", char.access.sequential_share),
                        ("read_share", char.read_share),
                        ("collective_share", char.mpiio.collective_share if char.mpiio else None),
                        ("imbalance", char.imbalance.ratio if char.imbalance else None)):
        if value is not None:
            feats[name] = float(value)
    label = char.suggestions[0].category if char.suggestions else "no I/O symptom"
    shares = ", ".join(f"{n.replace('_', ' ')} {feats[n]:.0%}" for n in
                       ("small_access_share", "sequential_share", "read_share", "metadata_time_share",
                        "collective_share") if n in feats)
    tips = "; ".join(f"{s.category}: {s.reason}" for s in char.suggestions[:2]) or "no tuning symptom found"
    text = (f"I/O profile ({char.source}, {char.nprocs} process(es), {char.layout.files} file(s), "
            f"{char.layout.kind}): {moved / 1e6:.3g} MB moved, {char.io_time_s:.3g} s in I/O calls; {shares}; "
            f"{char.metadata.fsyncs} fsyncs ({char.metadata.fsyncs_per_write:.2g} per write)"
            + (f"; slowest rank {feats['imbalance']:.2g}x the mean" if "imbalance" in feats else "")
            + f". Bottleneck: {tips}")
    return ProfileSummary(kind=char.source, text=text, bottleneck=label, features=feats,
                          source=source or char.path)


def summarise_io_file(path: str | Path) -> ProfileSummary:
    """A summary of a Darshan log, a strace output, or a characterisation JSON an observer kept."""
    path = Path(path)
    if path.suffix == ".json":
        from tunesmith.runners.iotrace.model import IOCharacterisation

        return summarise_io(IOCharacterisation.model_validate_json(path.read_text(encoding="utf-8")), str(path))
    from tunesmith.runners.iotrace.capture import load_trace

    return summarise_io(load_trace(path), str(path))


# -- torch profiler ---------------------------------------------------------------------------------
_CLASSES = (
    ("communication", ("nccl", "all_reduce", "allreduce", "all_gather", "allgather", "reduce_scatter", "broadcast",
                       "c10d", "alltoall", "send", "recv", "gloo")),
    ("gemm", ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "gemm", "gemv", "einsum", "dot", "cublas",
              "cutlass", "sgemm", "hgemm", "xmma")),
    ("conv", ("conv", "convolution", "cudnn", "winograd", "implicit_convolve")),
    ("elementwise", ("add", "sub", "mul", "div", "relu", "gelu", "silu", "sigmoid", "tanh", "exp", "log", "pow",
                     "sqrt", "rsqrt", "neg", "abs", "clamp", "where", "threshold", "dropout", "fill", "copy",
                     "elementwise", "vectorized", "unrolled", "leaky_relu", "hardtanh", "softplus", "maximum",
                     "minimum", "masked_fill", "to", "_to_copy", "zero")),
)


def op_class(name: str) -> str:
    """gemm, conv, elementwise, communication or other, from an op or kernel name."""
    low = name.lower().split("::")[-1]
    words = set(low.replace("(", "_").replace("<", "_").replace(" ", "_").split("_")) | {low.rstrip("_")}
    for cls, keys in _CLASSES:
        if any(k in words for k in keys) or (cls != "elementwise" and any(len(k) > 3 and k in low for k in keys)):
            return cls
    return "other"


def _self_times(events: list[dict[str, Any]]) -> dict[str, float]:
    """Self time (us) per op name: each complete event's duration less its direct children's, per thread."""
    out: dict[str, float] = defaultdict(float)
    by_thread: dict[tuple[Any, Any], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_thread[(e.get("pid"), e.get("tid"))].append(e)
    for evs in by_thread.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e.get("dur", 0))))
        stack: list[list[Any]] = []  # [start, end, name, time in direct children]
        for e in evs:
            ts, dur = float(e["ts"]), float(e.get("dur", 0))
            while stack and ts >= stack[-1][1]:
                begin, end, name, child = stack.pop()
                out[name] += max(0.0, end - begin - child)
            if stack:
                stack[-1][3] += dur
            stack.append([ts, ts + dur, e["name"], 0.0])
        for begin, end, name, child in stack:
            out[name] += max(0.0, end - begin - child)
    return dict(out)


def summarise_torch(trace: Any, source: str = "") -> ProfileSummary:
    """A summary of a torch.profiler run: a chrome-trace file or dict, a ``key_averages()`` table, or a
    ``{op name: self time us}`` dict. Device kernels (when there are any) decide the shares, else CPU ops."""
    kernels = 0
    if isinstance(trace, (str, Path)):
        source = source or str(trace)
        trace = json.loads(Path(trace).read_text(encoding="utf-8"))
    if isinstance(trace, dict) and "traceEvents" in trace:
        xs = [e for e in trace["traceEvents"] if e.get("ph") == "X" and "ts" in e and "name" in e]
        gpu = [e for e in xs if str(e.get("cat", "")).lower() in ("kernel", "gpu_memcpy", "gpu_memset")]
        kernels = sum(1 for e in gpu if str(e.get("cat", "")).lower() == "kernel")
        times = _self_times(gpu) if gpu else _self_times([e for e in xs if str(e.get("cat", "")).lower() == "cpu_op"])
    elif isinstance(trace, dict):
        times = {str(k): float(v) for k, v in trace.items()}
    else:  # an EventList of FunctionEventAvg (prof.key_averages())
        times, kernels = {}, 0
        for ev in trace:
            dev = float(getattr(ev, "self_device_time_total", 0.0) or getattr(ev, "self_cuda_time_total", 0.0) or 0.0)
            times[ev.key] = dev or float(ev.self_cpu_time_total)
    total = sum(times.values())
    if total <= 0:
        raise ValueError("the torch profiler trace holds no timed ops")
    shares: dict[str, float] = defaultdict(float)
    for name, t in times.items():
        shares[op_class(name)] += t / total
    top = sorted(times.items(), key=lambda kv: -kv[1])[:5]
    feats = {f"{c}_share": round(shares.get(c, 0.0), 6) for c in ("gemm", "conv", "elementwise", "communication", "other")}
    feats.update({"total_self_us": total, "ops": float(len(times)), "kernel_count": float(kernels),
                  "top_op_share": top[0][1] / total})
    main = max(("gemm", "conv", "elementwise", "communication", "other"), key=lambda c: shares.get(c, 0.0))
    label = f"{main}-dominated" if main != "other" else "other ops dominate"
    where = "device kernels" if kernels else "CPU ops"
    text = (f"torch profiler trace ({where}, {len(times)} distinct ops, {kernels} kernels, {total / 1e3:.3g} ms self "
            f"time): gemm {feats['gemm_share']:.0%}, conv {feats['conv_share']:.0%}, elementwise "
            f"{feats['elementwise_share']:.0%}, communication {feats['communication_share']:.0%}, other "
            f"{feats['other_share']:.0%}; top ops by self time: "
            + ", ".join(f"{n} {t / total:.0%}" for n, t in top) + f". Bottleneck: {label}")
    return ProfileSummary(kind="torch_profiler", text=text, bottleneck=label, features=feats, source=source)


# -- a trial's observer output ----------------------------------------------------------------------
def _io_from_metrics(metrics: dict[str, float]) -> ProfileSummary:
    """A shorter I/O summary from the ``iotrace.*`` numbers alone (when the kept JSON is gone)."""
    g = {k[8:]: v for k, v in metrics.items() if k.startswith("iotrace.")}
    feats = {"bytes": g.get("bytes_read", 0.0) + g.get("bytes_written", 0.0)}
    for src, name in (("nprocs", "nprocs"), ("files", "files"), ("fsyncs_per_write", "fsyncs_per_write"),
                      ("meta_ops_per_mib", "meta_ops_per_mib"), ("small_share", "small_access_share"),
                      ("sequential_share", "sequential_share"), ("read_share", "read_share"),
                      ("mpiio_collective_share", "collective_share"), ("imbalance", "imbalance"),
                      ("mb_per_io_s", "mb_per_io_s")):
        if src in g:
            feats[name] = float(g[src])
    if g.get("io_time_s", 0.0) > 0:
        feats["metadata_time_share"] = min(1.0, g.get("meta_time_s", 0.0) / g["io_time_s"])
    scores = {k[8:]: v for k, v in g.items() if k.startswith("suggest.")}
    label = max(scores, key=lambda c: scores[c]) if scores else "no I/O symptom"
    kind: Kind = "darshan" if g.get("source_darshan") == 1.0 else "strace"
    text = (f"I/O profile ({kind}): {feats['bytes'] / 1e6:.3g} MB moved, {g.get('io_time_s', 0.0):.3g} s in I/O calls; "
            + ", ".join(f"{n.replace('_', ' ')} {feats[n]:.2g}" for n in feats if n != "bytes")
            + f". Bottleneck: {label}")
    return ProfileSummary(kind=kind, text=text, bottleneck=label, features=feats, source="trial metrics")


def trial_summaries(trial: Any) -> list[ProfileSummary]:
    """Summaries of what the observers left on a trial: I/O trace, Nsight Compute metrics, torch trace."""
    m = trial.measurement
    if m is None:
        return []
    out: list[ProfileSummary] = []
    kept = m.artifacts.get("iotrace")
    if kept and Path(kept).is_file():
        out.append(summarise_io_file(kept))
    elif any(k.startswith("iotrace.") for k in m.metrics):
        out.append(_io_from_metrics(m.metrics))
    ncu = {k[4:]: v for k, v in m.metrics.items() if k.startswith("ncu.")}
    if ncu:
        out.append(summarise_ncu([ncu], source="trial metrics"))
    for key in ("torch_profiler", "torch_trace"):
        if m.artifacts.get(key) and Path(m.artifacts[key]).is_file():
            out.append(summarise_torch(m.artifacts[key]))
    return out


def _has_profile(trial: Any) -> bool:
    m = trial.measurement
    return m is not None and (any(k.startswith(("iotrace.", "ncu.")) for k in m.metrics)
                              or any(k in m.artifacts for k in ("iotrace", "torch_profiler", "torch_trace")))


def profile_lines(history: list[Any], minimize: bool = True, limit: int = 600) -> list[str]:
    """Prompt lines: the profile summaries of the baseline (the first profiled trial) and the incumbent."""
    profiled = [t for t in history if _has_profile(t)]  # cheap: nothing is read from disk for these
    if not profiled:
        return []
    picks = [("baseline", profiled[0])]
    timed = [t for t in profiled if t.measurement.median is not None and t.measurement.status.value == "ok"]
    if timed:
        best = (min if minimize else max)(timed, key=lambda t: t.measurement.median)
        if best is not profiled[0]:
            picks.append(("incumbent", best))
    return [f"Profile of the {role} (trial #{t.number}): {s.text[:limit]}"
            for role, t in picks for s in trial_summaries(t)]


# -- the profiles collection ------------------------------------------------------------------------
def index_profile(kstore: KnowledgeStore, summary: ProfileSummary, *, study: str, trial: int, domain: str,
                  hardware: str, system: str = "") -> str:
    """Store ``summary`` in the ``profiles`` collection (re-indexing the same trial overwrites); its id."""
    rid = f"profile:{study}:{trial}:{summary.kind}"
    meta = {"domain": domain, "system": system, "hardware": hardware, "kind": summary.kind, "study": study,
            "trial": trial, "bottleneck": summary.bottleneck, "source": f"{study}#{trial}",
            **{FEATURE_PREFIX + k: float(v) for k, v in summary.features.items()}}
    kstore.add("profiles", [Record(rid, summary.text, meta)])
    return rid


def summary_of(record: Record) -> ProfileSummary:
    """The summary a stored profile record holds."""
    md = record.metadata
    feats = {k[len(FEATURE_PREFIX):]: float(v) for k, v in md.items() if k.startswith(FEATURE_PREFIX)}
    return ProfileSummary(kind=md.get("kind", "ncu"), text=record.text, bottleneck=str(md.get("bottleneck", "")),
                          features=feats, source=str(md.get("source", "")))


def feature_distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Mean per-feature distance in [0, 1]: shares differ linearly, percents over 100, counts and sizes by
    log ratio; a feature only one side has counts as 1."""
    keys = set(a) | set(b)
    if not keys:
        return 1.0
    total = 0.0
    for key in keys:
        if key not in a or key not in b:
            total += 1.0
        elif key.endswith("_share"):
            total += min(1.0, abs(a[key] - b[key]))
        elif key.endswith("_pct"):
            total += min(1.0, abs(a[key] - b[key]) / 100)
        else:
            la, lb = math.log1p(abs(a[key])), math.log1p(abs(b[key]))
            total += abs(la - lb) / max(la, lb) if max(la, lb) > 0 else 0.0
    return total / len(keys)


@dataclass
class ProfileMatch:
    """A stored profile near the query one: by text, by features, and the blend used to rank."""

    record: Record
    summary: ProfileSummary
    text_score: float
    distance: float
    score: float


def similar_profiles(kstore: KnowledgeStore, summary: ProfileSummary, k: int = 5,
                     where: dict[str, Any] | None = None, exclude: str | None = None) -> list[ProfileMatch]:
    """The ``k`` stored profiles of the same family (GPU, I/O, ops) nearest to ``summary``: a pool by text,
    re-ranked by ``TEXT_WEIGHT`` x text similarity + the rest x (1 - feature distance)."""
    if not kstore.exists or k < 1:
        return []
    pool = kstore.query("profiles", summary.text, max(8 * k, 40), where)
    out = []
    for m in pool:
        other = summary_of(m.record)
        if FAMILY.get(other.kind) != FAMILY[summary.kind] or m.record.id == exclude:
            continue
        dist = feature_distance(summary.features, other.features)
        score = TEXT_WEIGHT * m.score + (1 - TEXT_WEIGHT) * (1 - dist)
        out.append(ProfileMatch(m.record, other, m.score, round(dist, 4), round(score, 4)))
    return sorted(out, key=lambda p: -p.score)[:k]


def index_study_profiles(kstore: KnowledgeStore, study_store: Any, study: str, *, signature: str,
                         hardware: str) -> int:
    """After a study: summarise and index the observer output of each of its trials; how many were indexed."""
    domain = signature.split("/", 1)[0]
    count = 0
    for trial in study_store.trials(study, include_interrupted=False):
        for s in trial_summaries(trial):
            index_profile(kstore, s, study=study, trial=trial.number, domain=domain, hardware=hardware,
                          system=signature)
            count += 1
    return count


def record_study_profiles(kstore: KnowledgeStore, study_store: Any, study: str, *, signature: str,
                          hardware: str) -> int:
    """``index_study_profiles`` that never fails the study: a store that cannot be written, or a kept
    profile that cannot be read, is logged and counts zero."""
    import logging
    import sqlite3

    from tunesmith.runners.errors import TunesmithError

    try:
        return index_study_profiles(kstore, study_store, study, signature=signature, hardware=hardware)
    except (TunesmithError, OSError, ValueError, sqlite3.Error) as exc:
        logging.getLogger(__name__).warning("profiles of %s not indexed in %s: %s", study, kstore.path, exc)
        return 0


def judge_profile_line(metrics: dict[str, float]) -> str:
    """One line of Nsight Compute features and the bottleneck label for a judge; empty without ``ncu.*``."""
    ncu = {k[4:]: v for k, v in metrics.items() if k.startswith("ncu.")}
    if not ncu:
        return ""
    s = summarise_ncu([ncu])
    f = s.features
    parts = [f"{label} {f[key]:.0f} %" for key, label in (("achieved_occupancy_pct", "achieved occupancy"),
                                                           ("dram_throughput_pct", "DRAM throughput"),
                                                           ("l2_hit_pct", "L2 hit rate")) if key in f]
    if "top_stall_share" in f:
        parts.append(f"top stall reason {f['top_stall_share']:.0%} of stalls")
    if "registers_per_thread" in f:
        parts.append(f"{f['registers_per_thread']:.0f} registers/thread")
    return f"Profile summary: bottleneck {s.bottleneck}; " + ", ".join(parts)
