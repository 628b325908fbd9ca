"""The generated-kernel evaluator: static proof checks, the trace verdict, tolerances, the reference side,
the timing summary, and the child's failures (compile, run time, timeout, a patched trusted function).

The cheats themselves are in tests/test_exploits.py; here each piece is checked on its own.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

from tunesmith.kernels import correctness, proof, reference
from tunesmith.kernels.evaluation import KernelEvaluation, evaluate_source, run_worker
from tunesmith.kernels.evaluation_timing import summarise
from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import JobError
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.observers import OBSERVERS
from tunesmith.runners.observers.kernel_trace import KernelTraceObserver, analyse
from tunesmith.runners.types import Measurement, Status

DATA = Path(__file__).resolve().parent / "data" / "exploits"
RELU = DATA / "problems" / "relu.py"
HONEST = (DATA / "honest_relu.py").read_text(encoding="utf-8")
REF_SRC = RELU.read_text(encoding="utf-8")
# A Triton ReLU kernel and its launcher ``relu(x)``, without a ModelNew (each test writes its own forward).
KERNEL = (DATA / "output_cache.py").read_text(encoding="utf-8").split("class ModelNew")[0].split('"""', 2)[2]


def _with_forward(body: str, header: str = "") -> str:
    return KERNEL + header + "\nclass ModelNew(nn.Module):\n    def forward(self, x):\n" + body


# -- static checks ------------------------------------------------------------------------------------
def test_honest_sources_pass_the_static_checks():
    assert proof.static_findings(HONEST, REF_SRC) == []
    assert proof.static_findings((DATA / "honest_softmax.py").read_text(), (DATA / "problems/softmax.py").read_text()) == []
    assert proof.defined_kernels(HONEST) == ["relu_kernel"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("        return x @ x\n", "@ operator"),
        ("        return torch.relu(x)\n", "calls torch.relu, the op the reference computes with"),
        ("        return x.cumsum(0)\n", "calls x.cumsum: a library op"),
        ("        y = eval('x')\n        return y\n", "dynamic code (eval)"),
        ("        self.last = x\n        return x\n", "keeps state across calls"),
        ("        global CACHE\n        return x\n", "keeps state across calls (global CACHE)"),
        ("        return x.__class__\n", "reaches into internals (__class__)"),
        ("        k = x.data_ptr()\n        return x\n", "keys on input identity"),
        ("        v = x.item()\n        return x\n", "reads tensor values on the host"),
        ("        torch.backends.cuda.matmul.allow_tf32 = True\n        return x\n", "patches torch.backends"),
        ("        torch.set_float32_matmul_precision('medium')\n        return x\n", "precision flags"),
        ("        e = torch.cuda.Event()\n        return x\n", "touches the timer"),
        ("        setattr(torch, 'relu', None)\n        return x\n", "setattr"),
        ("        T.save = print\n        return x\n", "patches T.save"),
        ("        E.elapsed_time = len\n        return x\n", "patches E.elapsed_time"),
        ("        b = __builtins__\n        return x\n", "reaches into internals (__builtins__)"),
        ("        raise SystemExit(0)\n", "ends the process"),
        ("        exit(0)\n", "ends the process (exit)"),
        ("        torch.utils.cpp_extension.load_inline('m', '')\n        return x\n", "C++/CUDA extension"),
    ],
)
def test_static_checks_name_the_problem(body, words):
    findings = proof.static_findings(_with_forward(body, "import torch as T\nE = torch.cuda.Event\n"), REF_SRC)
    assert any(words in f for f in findings), findings


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("import subprocess\n", "escapes the sandbox"),
        ("import os\n", "reads files or the environment"),
        ("import time\n", "touches the timer"),
        ("import importlib\n", "imports modules dynamically"),
        ("import numpy\n", "not torch, triton or a pure standard-library module"),
        ("from torch.utils.cpp_extension import load_inline\n", "extensions"),
    ],
)
def test_static_checks_refuse_imports(header, words):
    findings = proof.static_findings(_with_forward("        return relu(x)\n", header), REF_SRC)
    assert any(words in f for f in findings), findings


def test_static_checks_need_a_model_new_and_a_kernel():
    assert proof.static_findings("import torch\n") == ["defines no class ModelNew"]
    no_kernel = "import torch.nn as nn\nclass ModelNew(nn.Module):\n    def forward(self, x):\n        return x\n"
    assert "defines no @triton.jit kernel" in proof.static_findings(no_kernel)[0]


def test_calling_a_library_submodule_in_forward_is_refused():
    src = KERNEL + (
        "\nclass ModelNew(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(4, 4)\n\n    def forward(self, x):\n        relu(x)\n        return self.fc(x)\n"
    )
    assert any("library module self.fc" in f for f in proof.static_findings(src))


def test_reference_ops_come_from_the_reference_forward():
    assert proof.reference_ops(REF_SRC) == {"relu"}
    assert "softmax" in proof.reference_ops((DATA / "problems/softmax.py").read_text())


# -- the trace verdict ------------------------------------------------------------------------------
def test_trace_analysis():
    ok = analyse({"triton_kernels": {"k": 3}, "aten_ops": {"empty_like": 3}}, ["k"], {"relu", "clamp_min"})
    assert ok["findings"] == [] and ok["triton_kernels"] == ["k"] and ok["triton_launches"] == 3
    none = analyse({"triton_kernels": {"other": 1}, "aten_ops": {}}, ["k"])
    assert "no Triton kernel of the source ran (launched: other)" in none["findings"][0]
    lib = analyse({"triton_kernels": {"k": 1}, "aten_ops": {"clamp_min": 1, "mm": 2}}, ["k"], {"clamp_min"})
    assert lib["library_kernels"] == ["torch.clamp_min", "torch.mm"] and "library op(s)" in lib["findings"][0]
    gpu = {"triton_kernels": {"conv2d_kernel": 1}, "gpu_kernels": {"conv2d_kernel": 1, "sm90_xmma_gemm_f32f32": 1}}
    assert analyse(gpu, ["conv2d_kernel"])["library_kernels"] == ["sm90_xmma_gemm_f32f32"]


def test_kernel_trace_observer_is_registered_and_reports_the_proof(tmp_path):
    assert OBSERVERS.get("kernel_trace") is KernelTraceObserver
    from tunesmith.runners.base import RunResult, RunSpec
    from tunesmith.runners.context import ObservedRun

    proof_d = analyse({"triton_kernels": {"k": 2}, "aten_ops": {"mm": 1}}, ["k"])
    ctx = TrialContext(runner=None, workdir=tmp_path)
    ctx.runs.append(ObservedRun(RunSpec(argv=["x"], cwd=tmp_path), RunResult(returncode=0, result={"proof": proof_d}), True))
    m = KernelTraceObserver().finish(Measurement(status=Status.OK), ctx)
    assert m.metrics["trace.triton_launches"] == 2.0 and m.metrics["trace.library_ops"] == 1.0
    assert "torch.mm" in m.notes[0]


# -- tolerances ---------------------------------------------------------------------------------------
def test_generated_comparison_reports_strict_and_loose_apart():
    ref = [torch.linspace(-1, 1, 50)]
    assert correctness.check_generated([ref[0].clone()], ref).strict_ok
    loose = correctness.check_generated([ref[0] + 1e-3], ref)
    assert (loose.problem, loose.strict_ok, loose.loose_ok) == ("", False, True)
    bad = correctness.check_generated([ref[0] + 0.5], ref)
    assert not bad.loose_ok and "beyond the loose tolerance" in bad.problem
    assert "dtype" in correctness.check_generated([ref[0].half()], ref).problem
    transposed = torch.arange(6.0).reshape(2, 3)
    assert correctness.check_generated([transposed.t().contiguous().t()], [transposed]).strict_ok  # strides ignored
    assert correctness.tolerances(torch.float32) == (1e-4, 1e-2) and correctness.tolerances(torch.int64) == (0.0, 0.0)
    assert correctness.same_values([torch.tensor([float("nan")])], [torch.tensor([float("nan")])])


# -- the reference side -------------------------------------------------------------------------------
def test_reference_builds_seven_cases_and_leaves_the_callers_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    ref = reference.build_reference(RELU, small=True)
    assert torch.equal(torch.rand(1), before)
    names = [c.name for c in ref.cases]
    assert names == [f"seed={i}" for i in range(5)] + ["signed(seed=0)", "heavy_tailed(seed=1)"]
    assert ref.cases[0].inputs[0].shape == (8, 96) and (ref.cases[5].inputs[0] < 0).any()
    assert torch.equal(ref.expected[5][0], torch.relu(ref.cases[5].inputs[0]))
    assert set(ref.ops) == {"relu"}


def test_problem_errors_are_one_line_job_errors(tmp_path):
    with pytest.raises(JobError, match="does not exist"):
        reference.build_reference(tmp_path / "nope.py")
    (tmp_path / "p.py").write_text("import torch\nclass Model(torch.nn.Module):\n    pass\n"
                                   "def get_inputs():\n    return [torch.rand(2)]\ndef get_init_inputs():\n    return []\n")
    with pytest.raises(JobError, match="no get_small_inputs"):
        reference.build_reference(tmp_path / "p.py", small=True)


# -- timing summary (the GPU half, from recorded numbers) --------------------------------------------------
def test_timing_summary_uses_medians_and_clamps_at_the_speed_of_light():
    res = {"samples_ms": {"candidate": [1.0, 1.1, 0.9, 1.0], "eager": [2.0, 2.2, 1.8, 2.0], "compile": [1.5] * 4},
           "host_ms": {"candidate": [1.2] * 4}, "peak_gbs": 1000.0, "peak_tflops": 50.0}
    t = summarise(res, nbytes=10**6, flops=10**9)
    assert t["candidate"]["median_ms"] == 1.0 and t["candidate"]["n"] == 4 and t["candidate"]["iqr_ms"] > 0
    assert t["speedup_eager"] == pytest.approx(2.0) and t["speedup_compile"] == pytest.approx(1.5)
    assert t["sol_ms"] == pytest.approx(0.02) and not t["faster_than_light"] and t["flags"] == []
    fast = summarise({**res, "samples_ms": {**res["samples_ms"], "candidate": [0.001] * 4}}, 10**8, 0)
    assert fast["faster_than_light"] and fast["speedup_eager"] == pytest.approx(20.0)  # 2.0 / the 0.1 ms bound
    assert any("faster than light" in f for f in fast["flags"]) and any("check before" in f for f in fast["flags"])
    slow_host = summarise({**res, "host_ms": {"candidate": [0.1] * 4}}, 10, 0)
    assert any("exceeds host wall time" in f for f in slow_host["flags"])


# -- failures in the child -------------------------------------------------------------------------------
def test_syntax_error_is_a_compile_error_without_a_child(tmp_path):
    res = evaluate_source(RELU, "def broken(:\n", scratch=tmp_path)
    assert res.status == "compile_error" and res.detail.startswith("model_new.py:1:")
    assert isinstance(res, KernelEvaluation) and not (tmp_path / "cases.pt").exists()


def test_host_code_error_is_a_runtime_error(tmp_path):
    src = _with_forward("        relu(x)\n        raise ValueError('host side broke')\n")
    res = evaluate_source(RELU, src, scratch=tmp_path / "a", small=True)
    assert res.status == "runtime_error" and "ValueError: host side broke" in res.detail


def test_an_error_inside_the_triton_kernel_is_a_compile_error(tmp_path):
    broken = HONEST.replace("tl.maximum(x, 0.0)", "tl.no_such_function(x)")
    res = evaluate_source(RELU, broken, scratch=tmp_path / "b", small=True)
    assert res.status == "compile_error" and "no_such_function" in res.detail


def test_a_trusted_function_patched_past_the_static_check_is_caught_in_the_child(tmp_path):
    """Defence in depth: the worker checks the identity of its timers and comparisons itself."""
    ref = reference.build_reference(RELU, small=True)
    (tmp_path / "model_new.py").write_text(HONEST + "\ntorch.allclose = lambda *a, **k: True\n", encoding="utf-8")
    reference.save_inputs(ref, tmp_path / "cases.pt")
    runner = LocalRunner()
    try:
        ctx = TrialContext(runner=runner, workdir=tmp_path, timeout_s=120)
        res, failure = run_worker(ctx, tmp_path, "check", True, 120, 4096)
    finally:
        runner.close()
    assert failure is None and res["status"] == "rejected" and "replaced trusted function(s) torch.allclose" in res["detail"]


@pytest.mark.slow
def test_a_kernel_that_never_returns_times_out(tmp_path):
    src = _with_forward("        while x.numel() > 0:\n            pass\n        return relu(x)\n")
    res = evaluate_source(RELU, src, scratch=tmp_path, small=True, timeout_s=12)
    assert res.status == "timeout" and "12 s" in res.detail


def test_evaluation_outside_a_gpu_says_timing_is_unavailable(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = evaluate_source(RELU, HONEST, scratch=tmp_path, small=True, timing=True)
    assert res.status == "ok" and res.timing is None and "timing unavailable" in res.detail
    assert types.SimpleNamespace(**res.proof).triton_kernels == ["relu_kernel"]


# -- the timing path with the GPU stood in for (the logic around the timer; the timer itself needs CUDA) ----
def _fake_timing(samples: dict[str, float]) -> types.SimpleNamespace:
    from tunesmith.kernels import timing

    def bench(fns, *, pool, samples=100, min_ms=100.0, flush=None, **_):
        run = timing.TimedRun({k: [] for k in fns}, {k: [] for k in fns})
        for r in range(6):  # A B C, A B C ...: every slot of the pool twice
            for name, fn in fns.items():
                fn(r % pool)
                run.samples_ms[name].append(base[name] + 0.01 * r)
                run.host_ms[name].append(base[name] + 0.5)
        return run

    base = samples
    return types.SimpleNamespace(
        bench_interleaved=bench, L2Flusher=lambda device: types.SimpleNamespace(nbytes=256 * 2**20),
        reset_persisting_l2=lambda: True, gpu_state=lambda: {"sm_clock_mhz": 1980.0},
        peak_bandwidth_gbs=lambda device: (3350.0, "test"), peak_tflops=lambda device, dtype: (67.0, "test"),
        describe_device=lambda device: {"name": "stand-in"}, sol_bound_ms=timing.sol_bound_ms, sol_ms=timing.sol_ms,
        timer_mismatch=timing.timer_mismatch,
    )


@pytest.mark.parametrize(("exploit", "status", "words"), [
    ("honest_relu", "ok", "candidate 1.025 ms (IQR 0.025, n=6); eager 2.025 ms (1.98x)"),
    ("stale_output", "incorrect", "timed call on fresh inputs 1"),
])
def test_timing_path_checks_timed_outputs_and_summarises(monkeypatch, tmp_path, exploit, status, words):
    from tunesmith.kernels import evaluation, evaluation_timing
    from tunesmith.kernels import harness_generated as hg
    from tunesmith.runners.observers import ncu as ncu_mod

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(hg, "timing", _fake_timing({"candidate": 1.0, "eager": 2.0, "compile": 1.5}))
    monkeypatch.setattr(torch, "compile", lambda fn: fn)
    monkeypatch.setattr(ncu_mod, "find_ncu", lambda: None)

    def run_worker(c, scratch, phase, interpret, timeout_s, memory_mb, **extra):
        spec = {"source": str(scratch / "model_new.py"), "cases": str(scratch / "cases.pt"),
                "out": str(scratch / f"{phase}_out.pt"), **extra}
        return {"status": "ok", **hg.time_phase(spec, device="cpu")}, None

    monkeypatch.setattr(evaluation, "run_worker", run_worker)
    ref = reference.build_reference(RELU, small=True, pool=True)
    assert len(ref.pool) == 3 and ref.pool[0][0].shape == (256, 1024) and ref.flops == 0
    (tmp_path / "model_new.py").write_text((DATA / f"{exploit}.py").read_text(), encoding="utf-8")
    reference.save_inputs(ref, tmp_path / "cases.pt")
    out = KernelEvaluation(status="ok", detail="correct", strict_ok=True, loose_ok=True)
    ctx = TrialContext(runner=None, workdir=tmp_path)
    out = evaluation_timing.run_timing(out, ref, ctx, tmp_path, 60, None)
    assert out.status == status and words in out.detail + out.summary, (out.detail, out.summary)
    if status == "ok":
        t = out.timing
        assert t["candidate"]["n"] == 6 and t["speedup_eager"] == pytest.approx(2.0, rel=0.02)
        assert t["speedup_compile"] == pytest.approx(1.5, rel=0.02) and not t["faster_than_light"]
        assert t["bytes_moved"] == 2 * 256 * 1024 * 4 and t["persisting_l2_reset"] is True
        assert out.metrics["speedup_eager"] == t["speedup_eager"]
        assert "Nsight Compute: ncu (Nsight Compute) not found on PATH; going on" in out.summary


def test_unusable_worker_outputs_are_a_runtime_error_not_a_crash(tmp_path):
    from tunesmith.kernels.evaluation import _load_outputs

    assert "could not be read" in _load_outputs(tmp_path / "missing.pt", 7)
    torch.save({"outputs": [[torch.zeros(2)]], "repeat": [torch.zeros(2)]}, tmp_path / "short.pt")
    assert "outputs for 1 of 7 cases" in _load_outputs(tmp_path / "short.pt", 7)
    torch.save({"outputs": [[torch.zeros(2)]] * 7, "repeat": [torch.zeros(2)]}, tmp_path / "ok.pt")
    assert isinstance(_load_outputs(tmp_path / "ok.pt", 7), dict)
