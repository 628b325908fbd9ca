"""The LLM kernel agents with a scripted chat model: planner, coder, and the judge's repair and optimise rounds.

The evaluator here is a stand-in that reads markers in the source, so each round's verdict is known; the real
evaluator runs under the LLM path in tests/test_kernel_cli.py.
"""

from __future__ import annotations

import json
from typing import Any

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
    bad = json.dumps({"explanation": "x", "source": "print('no model here')"})
    backend = ScriptedBackend([APPROACH, feedback("memory bound", "vectorise loads")] + [bad] * 2)
    client = LLMClient(backend, structured_mode="json_object", max_retries=1)
    template = "class ModelNew: pass  # template SLOW\n"
    result = improve_kernel(client, reference=REFERENCE, evaluate=fake_evaluate(timed=True), rounds=2,
                            start=template)
    assert result.best is not None and result.best.origin == "template" and result.best.source == template
    assert "LLM call failed in round 1" in result.stopped and "no valid KernelDraft" in result.stopped
    # the validation error went back to the model once before giving up
    assert "ModelNew" in backend.sent[3][-1]["content"]


def test_planner_failure_ends_with_no_kernel() -> None:
    client = LLMClient(ScriptedBackend(["not json"] * 3), structured_mode="json_object", max_retries=1)
    result = improve_kernel(client, reference=REFERENCE, evaluate=fake_evaluate(timed=False), rounds=2)
    assert result.best is None and result.attempts == [] and "planner failed" in result.stopped


def test_draft_source_must_define_modelnew() -> None:
    assert strip_fences("```py\nx = 1\n```") == "x = 1\n"
    assert KernelDraft(source="class ModelNew: ...").source.startswith("class ModelNew")
