"""The GPU half of ``evaluate_source``: interleaved timing, speed of light, and Nsight Compute.

Runs the harness's ``time`` phase in a fresh child (candidate, eager reference and ``torch.compile``d
reference interleaved, L2 flushed before every call, at least 100 samples; ``kernels.timing``), checks
the outputs of the timed calls against the reference this process kept, summarises each side by median
and interquartile range, clamps speedups at the speed-of-light bound (bytes moved at peak bandwidth, FLOPs
at peak rate) and flags what needs a second look. Then, where ``ncu`` is usable, the ``profile`` phase
runs under Nsight Compute (``runners.observers.ncu``) and its digest joins the summary for the judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import InfrastructureError
from tunesmith.runners.observers.ncu import NcuObserver
from tunesmith.runners.stats import iqr, median

from . import correctness, reference, timing

if TYPE_CHECKING:
    from .evaluation import KernelEvaluation

SUSPICIOUS_SPEEDUP = 10.0  # over a vendor library: a second look before it is believed


def _side(samples: list[float]) -> dict[str, Any]:
    return {"median_ms": median(samples), "iqr_ms": iqr(samples), "n": len(samples), "samples_ms": samples}


def summarise(res: dict[str, Any], nbytes: int, flops: int) -> dict[str, Any]:
    """The timing dict of a KernelEvaluation from the worker's raw samples (pure; unit-tested)."""
    samples = {k: [float(x) for x in v] for k, v in (res.get("samples_ms") or {}).items() if v}
    out: dict[str, Any] = {name: _side(s) for name, s in samples.items()}
    sol = timing.sol_bound_ms(nbytes, flops, float(res.get("peak_gbs") or 0), float(res.get("peak_tflops") or 0))
    cand = out["candidate"]["median_ms"]
    bounded = max(cand, sol)
    flags = list(res.get("flags") or [])
    for base in ("eager", "compile"):
        if base in out and bounded > 0:
            out[f"speedup_{base}"] = out[base]["median_ms"] / bounded
            if out[f"speedup_{base}"] > SUSPICIOUS_SPEEDUP:
                flags.append(f"speedup {out[f'speedup_{base}']:.1f}x over {base}: check before believing it")
    out["faster_than_light"] = cand < sol
    if out["faster_than_light"]:
        flags.append(f"faster than light: {cand:.4g} ms < {sol:.4g} ms (bytes and FLOPs at peak)")
    host = [float(x) for x in (res.get("host_ms") or {}).get("candidate", [])]
    if host and timing.timer_mismatch(cand, median(host)):
        flags.append(f"event time {cand:.4g} ms exceeds host wall time {median(host):.4g} ms")
    util = {"dram_sol_fraction": timing.sol_ms(nbytes, float(res.get("peak_gbs") or 0)) / cand if cand > 0 else 0.0}
    out.update(sol_ms=sol, bytes_moved=nbytes, flops=flops, flags=flags, **util,
               peak_gbs=res.get("peak_gbs"), peak_tflops=res.get("peak_tflops"), dtype=res.get("dtype"),
               device=res.get("device"), gpu_before=res.get("gpu_before"), gpu_after=res.get("gpu_after"),
               torch_compile_build_ms=res.get("torch_compile_build_ms"), flush_bytes=res.get("flush_bytes"),
               persisting_l2_reset=res.get("persisting_l2_reset"), basis="interleaved, one process, L2 flushed")
    return out


def _profile(out: KernelEvaluation, ref: reference.ProblemReference, c: TrialContext, scratch: Path,
             timeout_s: float, memory_mb: int | None) -> None:
    from .evaluation import run_worker

    obs = next((o for o in c.observers if isinstance(o, NcuObserver)), None)
    pc = c
    if obs is None:
        obs = NcuObserver()
        pc = TrialContext(runner=c.runner, workdir=scratch, timeout_s=timeout_s, memory_mb=memory_mb, observers=[obs])
    usable, why = obs.usable()
    if not usable:
        out.summary += f"\nNsight Compute: {why}; going on without hardware counters"
        return
    try:
        run_worker(pc, scratch, "profile", False, timeout_s, memory_mb, problem=str(ref.path),  # ncu triples it
                   pool_seeds=list(reference.POOL_SEEDS))
    except InfrastructureError as exc:
        obs.why = exc.line()
    out.summary += "\n" + obs.digest()
    out.metrics.update(obs.numeric())


def run_timing(out: KernelEvaluation, ref: reference.ProblemReference, c: TrialContext, scratch: Path,
               timeout_s: float, memory_mb: int | None) -> KernelEvaluation:
    """Time a correct candidate and fill ``out.timing``, ``metrics`` and ``summary`` (or fail it)."""
    from .evaluation import run_worker

    res, failure = run_worker(c, scratch, "time", False, timeout_s, memory_mb, problem=str(ref.path),
                              pool_seeds=list(reference.POOL_SEEDS), samples=100, min_ms=100.0, compile_baseline=True)
    if failure is not None or res is None:
        out.status, out.detail = failure or ("runtime_error", "the timing worker wrote no result")
        return out
    if res.get("status") != "ok":
        out.status, out.detail = res["status"], f"while timed: {res.get('detail', '')}"[:400]
        return out
    saved = torch.load(scratch / "time_out.pt", weights_only=True)
    for slot, outs in enumerate(saved["timed"]):
        chk = correctness.check_generated(outs, ref.pool_expected[slot])
        if not chk.loose_ok:
            out.status, out.detail = "incorrect", f"timed call on fresh inputs {slot}: {chk.problem}"
            return out
    nbytes = reference.bytes_moved(ref.pool[0], ref.pool_expected[0])
    out.timing = summarise(res, nbytes, ref.flops)
    t = out.timing
    out.metrics.update({k: float(t[k]) for k in ("sol_ms", "speedup_eager", "speedup_compile", "dram_sol_fraction")
                        if isinstance(t.get(k), (int, float))})
    out.metrics["candidate_ms"] = t["candidate"]["median_ms"]
    parts = [f"candidate {t['candidate']['median_ms']:.4g} ms (IQR {t['candidate']['iqr_ms']:.2g}, n={t['candidate']['n']})"]
    parts += [f"{b} {t[b]['median_ms']:.4g} ms ({t['speedup_' + b]:.2f}x)" for b in ("eager", "compile") if b in t]
    out.summary = "; ".join(parts) + (f" [{'; '.join(t['flags'])}]" if t["flags"] else "")
    out.detail += "; " + "; ".join(parts)
    _profile(out, ref, c, scratch, timeout_s, memory_mb)
    out.summary = out.summary.strip()
    return out
