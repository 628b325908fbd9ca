"""The triton_config target on CPU: real Triton under the interpreter, real worker processes.

End-to-end cases go through ``LocalRunner`` and ``python -m tunesmith.kernels.harness``; the cheaper
harness defences run ``harness.evaluate`` in this process (the interpreter is switched on per test).
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from tunesmith.kernels import correctness, harness
from tunesmith.kernels.target import INTERPRET_DETAIL, TritonConfigTarget, to_measurement
from tunesmith.runners.base import RunResult
from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import JobError
from tunesmith.runners.job import load_job, parse_job
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.types import Candidate, Status

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BUGGY = FIXTURES / "triton_buggy.py"
EXAMPLE_JOB = ROOT / "examples" / "triton_softmax" / "job.toml"


def make_target(**workload) -> TritonConfigTarget:
    base = {
        "module": "triton_buggy.py",
        "launcher": "softmax",
        "seeds": [0],
        "tile_params": {"BLOCK_SIZE": {"low": 32, "high": 256, "default": 128}},
        "rtol": 1e-3,
        "atol": 1e-6,
        "interpret": True,
    }
    job = parse_job(
        {"name": "t", "target": "triton_config", "workload": {**base, **workload}}, base_dir=FIXTURES
    )
    return TritonConfigTarget(job)


def run(target: TritonConfigTarget, workdir: Path, **config):
    cand = Candidate(config=target.space().validate_config(config))
    assert not target.check(cand)
    ctx = TrialContext.for_job(target.job, LocalRunner(), workdir, repeats=100)
    return ctx.finish(target.evaluate(cand, ctx))


def example_target() -> TritonConfigTarget:
    job = load_job(EXAMPLE_JOB)
    target = TritonConfigTarget(
        job.model_copy(update={"workload": {**job.workload, "seeds": [0], "interpret": True}})
    )
    target.preflight()
    return target


# -- end to end through the runner: one worker process per case, all started together ---------------
E2E = {
    "example": (example_target, {"BLOCK_SIZE": 128, "num_warps": 2, "num_stages": 1}),
    "unnormalised": (lambda: make_target(launcher="softmax_unnormalised"), {}),
    "in_place": (lambda: make_target(launcher="softmax_in_place"), {}),
    "relu": (lambda: make_target(launcher="relu_copy", reference="relu_reference"), {}),
    "no_compile": (make_target, {"BLOCK_SIZE": 256}),
}


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    targets = {name: (factory(), cfg) for name, (factory, cfg) in E2E.items()}
    with ThreadPoolExecutor(len(targets)) as pool:
        futures = {name: pool.submit(run, t, root / name, **cfg) for name, (t, cfg) in targets.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.slow
def test_example_job_correct_config_passes_without_timing(e2e):
    m = e2e["example"]
    assert m.status == Status.OK, m.detail + m.stderr_tail
    assert m.timing_available is False and m.samples == []
    assert m.detail == INTERPRET_DETAIL
    assert m.metrics["max_abs_err"] < 1e-5 and m.metrics["strict_pass"] == 1.0
    assert m.fingerprint["triton_interpret"] is True
    assert json.loads(Path(m.artifacts["result"]).read_text())["cases"][0]["name"] == "seed=0"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("unnormalised", "differs from the reference"),
        ("in_place", "modified its input"),
        ("relu", "signed("),  # the maker's inputs are non-negative: only the signed draw exposes the copy
    ],
)
def test_wrong_or_cheating_launchers_fail_correctness(e2e, case, words):
    m = e2e[case]
    assert m.status == Status.CORRECTNESS, m.detail + m.stderr_tail
    assert words in m.detail and m.samples == []


@pytest.mark.slow
def test_config_that_does_not_compile_is_status_compile(e2e):
    m = e2e["no_compile"]
    assert m.status == Status.COMPILE, m.detail + m.stderr_tail
    assert "BLOCK_SIZE above 128" in m.detail and "\n" not in m.detail


def test_evaluate_writes_the_spec_and_sets_the_interpreter(tmp_path):
    class Recorder:
        def run(self, spec):
            self.spec = spec
            return RunResult(
                returncode=0, result={"status": "ok", "timing_available": False, "max_abs_err": 0.0}
            )

    rec, target = Recorder(), make_target(interpret=True)
    m = target.evaluate(target.baseline(), TrialContext(runner=rec, workdir=tmp_path / "w", repeats=7))  # type: ignore[arg-type]
    spec = json.loads((tmp_path / "w" / "spec.json").read_text())
    assert spec["config"] == spec["baseline_config"] == {"BLOCK_SIZE": 128, "num_warps": 4, "num_stages": 3}
    assert spec["samples"] == 7 and spec["module"] == str(BUGGY) and spec["interpret"] is True
    assert rec.spec.env["TRITON_INTERPRET"] == "1" and rec.spec.argv[1:3] == [
        "-m",
        "tunesmith.kernels.harness",
    ]
    assert m.status == Status.OK and m.detail == INTERPRET_DETAIL and not m.timing_available
    assert m.fingerprint["triton_interpret"] is True and "torch" in m.fingerprint


# -- harness defences in process -----------------------------------------------------------------------
def spec_for(launcher: str, **extra) -> dict:
    spec = {
        "module": str(BUGGY),
        "launcher": launcher,
        "reference": "reference",
        "inputs": "make_inputs",
        "config": {"BLOCK_SIZE": 128, "num_warps": 4, "num_stages": 1},
        "rtol": 1e-3,
        "atol": 1e-6,
        "seeds": [0],
        "interpret": True,
    }
    return {**spec, **extra}


@pytest.fixture
def interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the harness puts the user's folder on sys.path
    monkeypatch.setattr(torch, "allclose", torch.allclose)  # restored even if a candidate patches it


def test_harness_passes_a_correct_launcher_on_every_case(interpreter):
    res = harness.evaluate(spec_for("softmax", seeds=[0, 1]))
    assert res["status"] == "ok", res
    assert [c["name"] for c in res["cases"]] == ["seed=0", "seed=1", "signed(seed=0)", "heavy_tailed(seed=1)"]
    assert res["timing_available"] is False and res["strict_pass"] is True


@pytest.mark.parametrize(
    ("launcher", "status", "words"),
    [
        ("softmax_fails_on_negative_rows", "runtime", "input below -1"),
        ("softmax_patches_allclose", "correctness", "torch.allclose"),
        ("softmax_background_thread", "correctness", "sneaky"),
        ("no_such_launcher", "compile", "no function"),
    ],
)
def test_harness_rejects(interpreter, launcher, status, words):
    res = harness.evaluate(spec_for(launcher))
    assert res["status"] == status, res
    assert words in res["detail"]


def test_harness_rejects_a_small_tolerance_miss_but_reports_strict_separately(interpreter):
    res = harness.evaluate(spec_for("softmax", config={"BLOCK_SIZE": 64, "num_warps": 4, "num_stages": 1}))
    assert res["status"] == "correctness" and res["max_abs_err"] > 1e-3


@pytest.mark.parametrize("example", ["triton_softmax", "triton_layernorm"])
def test_example_jobs_preflight_and_pass_in_the_harness(interpreter, example):
    target = TritonConfigTarget(load_job(ROOT / "examples" / example / "job.toml"))
    target.preflight()
    assert target.space().get("BLOCK_SIZE").kind == "pow2" and target.job.objective.metric == "ms"
    spec = target.harness_spec(Candidate(config={**target.baseline().config, "BLOCK_SIZE": 128}), repeats=100)
    res = harness.evaluate({**spec, "seeds": [0], "interpret": True})
    assert res["status"] == "ok", res
    assert res["strict_pass"] is True and len(res["cases"]) == 3


# -- correctness helpers -----------------------------------------------------------------------------
def test_variants_keep_shapes_and_draw_signed_and_heavy_values():
    x = torch.rand(64, 64)
    signed = correctness.signed_variant((x, 3), seed=1)
    heavy = correctness.heavy_tailed_variant((x,), seed=2)[0]
    assert signed[1] == 3 and signed[0].shape == x.shape and (signed[0] < 0).any()
    assert heavy.abs().max() > 10 * heavy.abs().median() and torch.isfinite(heavy).all()
    xt = torch.rand(8, 4).t()
    assert correctness.signed_variant((xt,), 0)[0].stride() == xt.stride()


def test_compare_rejects_subclasses_aliases_and_wrong_shapes():
    x = torch.randn(4, 5)
    ref = [torch.softmax(x, -1)]

    class Lazy(torch.Tensor):
        pass

    assert (
        "plain torch.Tensor" in correctness.compare(ref[0].as_subclass(Lazy), ref, (x,), 1e-3, 1e-6).problem
    )
    assert "shares memory" in correctness.compare(x, [x.clone()], (x,), 1e-3, 1e-6).problem
    assert "expected (4, 5)" in correctness.compare(ref[0].t(), ref, (x,), 1e-3, 1e-6).problem
    assert "tuple of 2" in correctness.compare((ref[0], ref[0]), ref, (x,), 1e-3, 1e-6).problem
    ok = correctness.compare(ref[0].clone(), ref, (x,), 1e-3, 1e-6)
    assert ok.ok and ok.strict_pass is True and ok.max_abs_err == 0.0
    nan = ref[0].clone()
    nan[0, 0] = float("nan")
    assert correctness.compare(nan, ref, (x,), 1e-3, 1e-6).max_abs_err == float("inf")


def test_poison_and_changed_inputs():
    out = torch.ones(3)
    correctness.poison(out)
    assert torch.isnan(out).all()
    a = torch.arange(6.0)
    snap = correctness.clone_inputs((a, 2))
    assert correctness.changed_inputs((a, 2), snap) == []
    a[3] = 3.5
    assert correctness.changed_inputs((a, 2), snap) == [0]


# -- the target without running anything --------------------------------------------------------------
def test_space_rules_and_check():
    t = make_target(
        num_warps=[2, 4],
        num_stages=[1, 2],
        tile_params={
            "BM": {"low": 16, "high": 2048, "default": 64},
            "BN": {"low": 16, "high": 2048, "default": 64},
        },
    )
    space = t.space()
    assert space.names == ["BM", "BN", "num_warps", "num_stages"]
    assert all(p.apply == "meta" for p in space.params)
    assert space.get("num_warps").default == 4 and space.get("num_stages").default == 1
    assert t.rules() == ["BM", "BN", "num_warps", "num_stages"]
    assert t.check(Candidate(config={"BM": 2048, "BN": 1024, "num_warps": 4, "num_stages": 1}))
    assert not t.check(Candidate(config={"BM": 1024, "BN": 1024, "num_warps": 4, "num_stages": 1}))
    assert "triton_buggy:softmax" in t.signature()


@pytest.mark.parametrize(
    ("workload", "words"),
    [
        ({"module": "nope.py"}, "does not exist"),
        ({"launcher": "missing_fn"}, "defines no 'missing_fn'"),
        ({"reference": "missing_ref"}, "workload.reference"),
        ({"tile_params": {"TILE": {"low": 16, "high": 64, "default": 32}}}, "no keyword 'TILE'"),
    ],
)
def test_preflight_errors_are_one_line(workload, words):
    with pytest.raises(JobError) as err:
        make_target(**workload).preflight()
    assert words in str(err.value) and "\n" not in str(err.value) and "fix:" in str(err.value)


@pytest.mark.parametrize(
    "workload",
    [{"num_warps": [3]}, {"tile_params": {"num_warps": {"low": 1, "high": 2, "default": 1}}}, {"bogus": 1}],
)
def test_bad_workload_fields_are_job_errors(workload):
    with pytest.raises(JobError):
        make_target(**workload)


def test_gpu_result_maps_to_measurement_with_session_speedups():
    res = {
        "status": "ok",
        "timing_available": True,
        "samples_ms": [1.0, 1.1, 0.9],
        "baseline_samples_ms": [2.0, 2.0, 2.0],
        "eager_samples_ms": [30.0, 30.0, 30.0],
        "host_samples_ms": [1.2, 1.2, 1.2],
        "sol_ms": 0.5,
        "compile_ms": 900.0,
        "max_abs_err": 1e-7,
        "strict_pass": True,
        "gpu_before": {"sm_clock_mhz": 1980.0, "source": "nvidia-smi"},
        "flags": [],
    }
    m = to_measurement(RunResult(returncode=0, result=res))
    assert m.status == Status.OK and m.timing_available and m.median == 1.0
    assert m.metrics["speedup_vs_baseline"] == 2.0 and m.metrics["speedup_vs_eager"] == 30.0
    assert m.metrics["sm_clock_mhz"] == 1980.0 and m.metrics["faster_than_light"] == 0.0
    assert "check before believing" in m.detail and "baseline 2 ms" in m.detail and "eager 30 ms" in m.detail
    fast = to_measurement(RunResult(returncode=0, result={**res, "sol_ms": 2.0}))
    assert fast.metrics["faster_than_light"] == 1.0 and fast.metrics["speedup_vs_baseline"] == 1.0


@pytest.mark.parametrize(
    ("run", "status"),
    [
        (RunResult(returncode=None, launch_error="cannot start"), Status.INFRASTRUCTURE),
        (RunResult(returncode=-9, timed_out=True, wall_s=300), Status.TIMEOUT),
        (RunResult(returncode=-9, memory_exceeded=True), Status.RUNTIME),
        (RunResult(returncode=-11, stderr_tail="Segmentation fault\n"), Status.RUNTIME),
        (RunResult(returncode=0, result={"status": "weird"}), Status.INFRASTRUCTURE),
    ],
)
def test_runner_failures_map_to_the_taxonomy(run, status):
    m = to_measurement(run)
    assert m.status == status and m.detail and "\n" not in m.detail and not m.samples
