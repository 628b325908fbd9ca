"""GPU timing per docs/measuring.md: L2 flush size, CUDA-event timer, interleaved candidate/baseline/eager.

Every test needs a CUDA device and skips without one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from tunesmith.kernels import harness, timing

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "triton_softmax"


def test_flush_buffer_is_at_least_twice_l2_and_256_mb():
    flush = timing.L2Flusher("cuda")
    assert flush.nbytes >= 2 * timing.l2_cache_bytes("cuda")
    assert flush.nbytes >= 256 * 2**20
    flush.buffer.fill_(1)
    flush()
    torch.cuda.synchronize()
    assert not bool(flush.buffer.any())


def test_timer_gives_at_least_100_positive_samples_consistent_with_host_time():
    x = torch.randn(1 << 22, device="cuda")
    run = timing.bench_interleaved(
        {"scale": lambda i: x * 2}, samples=100, min_ms=5, flush=timing.L2Flusher("cuda")
    )
    samples, host = run.samples_ms["scale"], run.host_ms["scale"]
    assert len(samples) >= 100 and len(host) == len(samples)
    assert all(s > 0 for s in samples)
    med, host_med = sorted(samples)[len(samples) // 2], sorted(host)[len(host) // 2]
    assert not timing.timer_mismatch(med, host_med)


def test_work_on_a_side_stream_does_not_escape_the_timer():
    side = torch.cuda.Stream()
    cycles = 2_000_000  # about 1 ms at 2 GHz

    def on_side_stream(i: int) -> None:
        with torch.cuda.stream(side):
            torch.cuda._sleep(cycles)

    run = timing.bench_interleaved({"side": on_side_stream}, samples=100, min_ms=1)
    med = sorted(run.samples_ms["side"])[len(run.samples_ms["side"]) // 2]
    assert med > 0.2, f"side-stream work escaped the timer: median {med} ms"


def test_interleaved_measurement_returns_candidate_baseline_and_eager_samples(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the harness puts the user's folder on sys.path
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", torch.backends.cuda.matmul.allow_tf32)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", torch.backends.cudnn.allow_tf32)
    spec = {
        "module": str(EXAMPLE / "softmax.py"),
        "launcher": "softmax",
        "reference": "reference",
        "inputs": "make_inputs",
        "config": {"BLOCK_SIZE": 2048, "num_warps": 8, "num_stages": 2},
        "baseline_config": {"BLOCK_SIZE": 1024, "num_warps": 4, "num_stages": 3},
        "rtol": 1e-3,
        "atol": 1e-6,
        "seeds": [0],
        "interpret": False,
        "samples": 100,
        "min_ms": 20.0,
        "pool": 2,
    }
    res = harness.evaluate(spec)
    assert res["status"] == "ok", res.get("detail")
    assert res["timing_available"] is True and res["interpret"] is False
    n = len(res["samples_ms"])
    assert n >= 100
    assert len(res["baseline_samples_ms"]) == n and len(res["eager_samples_ms"]) == n
    assert res["flush_bytes"] >= 2 * timing.l2_cache_bytes("cuda")
    assert res["compile_ms"] > 0 and res["sol_ms"] > 0 and res["device"]["name"]
    assert res["device"]["tf32_matmul"] is False
    assert not any("faster than light" in f for f in res["flags"])
    assert res["persisting_l2_reset"] in (True, None)


def test_target_end_to_end_on_gpu(tmp_path):
    from tunesmith.kernels.target import TritonConfigTarget
    from tunesmith.runners.job import load_job
    from tunesmith.runners.local import LocalRunner

    job = load_job(EXAMPLE / "job.toml")
    target = TritonConfigTarget(job.model_copy(update={"workload": {**job.workload, "seeds": [0]}}))
    target.preflight()
    from tunesmith.runners.context import TrialContext

    m = target.evaluate(target.baseline(), TrialContext(runner=LocalRunner(), workdir=tmp_path / "trial", repeats=100))
    assert m.status.value == "ok", m.detail + m.stderr_tail
    assert m.timing_available and len(m.samples) >= 100 and m.median > 0
    for key in (
        "baseline_ms",
        "eager_ms",
        "speedup_vs_baseline",
        "speedup_vs_eager",
        "compile_ms",
        "max_abs_err",
    ):
        assert key in m.metrics, key
    assert 0.5 < m.metrics["speedup_vs_baseline"] < 2.0  # the baseline config timed against itself


def test_gpu_state_reads_clocks_where_nvidia_smi_exists():
    state = timing.gpu_state("cuda")
    assert isinstance(state, dict)
    if state:
        assert state["sm_clock_mhz"] > 0 and state["source"] in ("pynvml", "nvidia-smi")
    peak, source = timing.peak_bandwidth_gbs("cuda")
    assert 100 < peak < 20_000 and source
