"""The ``kernel`` target in the core's loop: the coder node writes each candidate's source, the evaluator's
verdict becomes a measurement, and an untimed (interpreter) study says so instead of inventing a speed.

The plan and the evaluator are small stand-ins here so the loop's own behaviour is what is tested; the real
templates and evaluator run in tests/test_kernel_cli.py.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import tunesmith.kernels.generation as generation
from tunesmith.agents.study import drive, open_session
from tunesmith.kernels.codegen_target import INTERPRETER_NOTE, KernelGenTarget, evaluation_to_measurement
from tunesmith.runners.errors import JobError
from tunesmith.runners.job import parse_job
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Status

PROBLEM = "import torch\nclass Model(torch.nn.Module):\n    pass\ndef get_inputs():\n    return []\n" \
          "def get_init_inputs():\n    return []\ndef get_small_inputs():\n    return []\n"


class FakeEvaluation(BaseModel):
    status: str
    detail: str = ""
    strict_ok: bool = False
    loose_ok: bool = False
    max_abs_err: float | None = None
    timing: dict[str, Any] | None = None
    proof: dict[str, Any] = {}
    metrics: dict[str, Any] = {}


class FakePlan:
    pattern = "row softmax"
    signature = {"ops": ["softmax"], "shapes": [[4, 8]], "dtypes": ["float32"]}

    def space(self) -> SearchSpace:
        return SearchSpace(params=(Param(name="BLOCK", kind="pow2", low=16, high=64, default=32, apply="meta"),))

    def default_config(self) -> dict[str, Any]:
        return {"BLOCK": 32}

    def render(self, config: dict[str, Any]) -> str:
        if config["BLOCK"] == 16:
            raise ValueError("BLOCK 16 is too small for this template")
        return f"# generated\nBLOCK = {config['BLOCK']}\n"


class NeedsLLM(BaseModel):
    reason: str


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {"sources": [], "small": []}

    def plan_kernel(problem: Path, *, small: bool = False):  # noqa: ANN202
        return NeedsLLM(reason="no template covers aten.convolution: an LLM is needed") if "conv" in problem.name \
            else FakePlan()

    def evaluate_source(problem: Path, source: str, *, scratch: Path, small: bool = False, **kw: Any):  # noqa: ANN202
        seen["sources"].append(source)
        seen["small"].append(small)
        assert scratch.is_dir()
        if "BLOCK = 64" in source:
            return FakeEvaluation(status="incorrect", detail="seed 1: max abs err 0.3 > 1e-4", max_abs_err=0.3)
        return FakeEvaluation(status="ok", strict_ok=True, loose_ok=True, max_abs_err=1e-7)

    monkeypatch.setattr(generation, "plan_kernel", plan_kernel, raising=False)
    monkeypatch.setattr(generation, "NeedsLLM", NeedsLLM, raising=False)
    monkeypatch.setitem(sys.modules, "tunesmith.kernels.evaluation",
                        types.SimpleNamespace(evaluate_source=evaluate_source))
    (tmp_path / "softmax.py").write_text(PROBLEM)
    (tmp_path / "conv.py").write_text(PROBLEM)
    return seen


def _job(tmp_path: Path, **workload: Any):  # noqa: ANN202
    return parse_job({"name": "k", "target": "kernel", "workload": {"problem": "softmax.py", "small": True, **workload},
                      "budget": {"trials": 3}, "strategy": {"name": "grid"}, "llm": {"mode": "off"},
                      "measure": {"observers": []}}, base_dir=tmp_path)


def test_loop_authors_sources_and_reports_untimed_correctness(tmp_path: Path, fakes: dict[str, Any]) -> None:
    with open_session(_job(tmp_path), tmp_path / "state") as session:
        outcome = drive(session)
    first = [t for t in outcome.trials if t.candidate.origin != "remeasure"]
    by_block = {t.candidate.config["BLOCK"]: t for t in first}
    assert set(by_block) == {16, 32, 64}
    # the coder wrote each source from its config; a config the template cannot render is refused, not run
    assert by_block[32].candidate.source == "# generated\nBLOCK = 32\n"
    assert by_block[16].measurement.status == Status.CONSTRAINTS and "too small" in by_block[16].measurement.detail
    assert by_block[64].measurement.status == Status.CORRECTNESS and "max abs err" in by_block[64].measurement.detail
    ok = by_block[32].measurement
    assert ok.status == Status.OK and not ok.timing_available and ok.samples == [] and INTERPRETER_NOTE in ok.detail
    assert ok.metrics["strict_pass"] == 1.0 and ok.fingerprint["triton_interpret"] is True
    bad = by_block[64].measurement  # a failed trial keeps its source and the evaluator's verdict on disk
    assert Path(bad.artifacts["source"]).read_text() == by_block[64].candidate.source
    assert '"incorrect"' in Path(bad.artifacts["evaluation"]).read_text()
    assert fakes["sources"] == ["# generated\nBLOCK = 32\n", "# generated\nBLOCK = 64\n"] and all(fakes["small"])
    # the source is part of the key: the same config with other code is another candidate
    assert by_block[32].candidate.key != Candidate(config={"BLOCK": 32}).key


def test_fixed_llm_source_has_an_empty_space(tmp_path: Path, fakes: dict[str, Any]) -> None:
    (tmp_path / "model_new.py").write_text("# llm wrote this\n")
    job = _job(tmp_path, problem="conv.py", source_file="model_new.py")
    with open_session(job, tmp_path / "state") as session:
        assert session.target.space().names == []
        outcome = drive(session)
    assert [t.candidate.source for t in outcome.trials] == ["# llm wrote this\n"]
    assert outcome.baseline is not None and outcome.baseline.measurement.ok


def test_uncovered_problem_without_source_is_one_line(tmp_path: Path, fakes: dict[str, Any]) -> None:
    target = KernelGenTarget(_job(tmp_path, problem="conv.py"))
    with pytest.raises(JobError, match="an LLM is needed") as err:
        target.preflight()
    assert "--llm" in err.value.line() and "\n" not in err.value.line()
    with pytest.raises(JobError, match="does not exist"):
        KernelGenTarget(_job(tmp_path, problem="missing.py")).preflight()
    with pytest.raises(JobError, match="unknown field"):
        KernelGenTarget(_job(tmp_path, problme="x.py"))


def test_evaluations_map_to_the_failure_taxonomy() -> None:
    cases = {"compile_error": Status.COMPILE, "runtime_error": Status.RUNTIME, "incorrect": Status.CORRECTNESS,
             "rejected": Status.CORRECTNESS, "timeout": Status.TIMEOUT}
    for status, expected in cases.items():
        m = evaluation_to_measurement(FakeEvaluation(status=status, detail="why"))
        assert m.status == expected and not m.ok and "why" in m.detail
    cheat = evaluation_to_measurement(FakeEvaluation(status="rejected", detail="torch.matmul ran (cuBLAS)"))
    assert cheat.detail.startswith("rejected by the evaluator")
    timed = evaluation_to_measurement(FakeEvaluation(
        status="ok", strict_ok=True, loose_ok=True,
        timing={"candidate": {"median_ms": 0.5, "samples_ms": [0.5, 0.4, 0.6]}, "eager": {"median_ms": 1.0},
                "compile": {"median_ms": 0.6}, "speedup_eager": 2.0, "speedup_compile": 1.2},
        metrics={"sm_throughput_pct": 71.5, "note": "text is dropped"}))
    assert timed.ok and timed.timing_available and timed.samples == [0.5, 0.4, 0.6]
    assert timed.metrics["speedup_vs_compiled"] == 1.2 and timed.metrics["ev.sm_throughput_pct"] == 71.5
    assert "vs torch.compile 1.20x" in timed.detail and "ev.note" not in timed.metrics
    assert timed.metrics["eager_ms"] == 1.0 and timed.metrics["compiled_ms"] == 0.6
