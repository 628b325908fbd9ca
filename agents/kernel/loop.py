"""The LLM rounds of kernel generation: plan once, then write, evaluate and judge, keeping the best correct kernel.

Round by round the coder gets only the latest kernel and the judge's feedback on it (CudaForge found the whole
history hurt quality and cost). A failed kernel (compile error, runtime error, wrong answer, a cheat the
evaluator rejected) goes to the judge in repair mode; a correct one, where it was timed, in optimise mode. A
correct kernel that could not be timed (the Triton interpreter) ends the rounds: there is nothing to optimise
against. The evaluator decides what is correct and what is faster; the LLM never does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunesmith.agents.kernel.roles import (
    Feedback,
    KernelApproach,
    Mode,
    judge_optimise,
    judge_repair,
    plan_approach,
    write_kernel,
)
from tunesmith.runners.errors import TunesmithError

Evaluate = Callable[[str], Any]  # source -> KernelEvaluation (status, detail, strict_ok, loose_ok, timing, metrics)


@dataclass
class Attempt:
    """One evaluated kernel: where it came from, the evaluator's verdict and the feedback that led to it."""

    round: int
    origin: str  # "template" or "llm"
    source: str
    evaluation: Any
    feedback_mode: Mode | None = None
    feedback: Feedback | None = None

    @property
    def ok(self) -> bool:
        return self.evaluation.status == "ok"

    @property
    def median_ms(self) -> float | None:
        cand = (self.evaluation.timing or {}).get("candidate") or {}
        value = cand.get("median_ms", cand.get("median"))
        return float(value) if isinstance(value, (int, float)) else None

    def line(self) -> str:
        ev = self.evaluation
        tol = "strict" if ev.strict_ok else "loose" if ev.loose_ok else ""
        verdict = f"correct ({tol} tolerance)" if self.ok else f"{ev.status}: {ev.detail}"
        speed = f", {self.median_ms:.4g} ms" if self.median_ms is not None else ""
        return f"round {self.round} ({self.origin}): {verdict}{speed}"


@dataclass
class LoopResult:
    """What the rounds produced: the best correct kernel (None if none was), every attempt, and why they ended."""

    approach: KernelApproach | None
    attempts: list[Attempt] = field(default_factory=list)
    best: Attempt | None = None
    stopped: str = ""


def better(new: Attempt, best: Attempt | None) -> bool:
    """Whether ``new`` should replace ``best``: correct beats incorrect, strict beats loose, then faster when
    both were timed; an untimed tie keeps the earlier kernel."""
    if not new.ok:
        return False
    if best is None:
        return True
    if new.evaluation.strict_ok != best.evaluation.strict_ok:
        return bool(new.evaluation.strict_ok)
    a, b = new.median_ms, best.median_ms
    return a is not None and b is not None and a < b


def timing_text(ev: Any) -> str:
    """Same-session medians and speedups, in one line, for the optimising judge."""
    t = ev.timing or {}

    def ms(part: str) -> str:
        d = t.get(part) or {}
        v = d.get("median_ms", d.get("median"))
        return f"{v:.4g} ms" if isinstance(v, (int, float)) else "n/a"

    return (f"kernel {ms('candidate')}, eager {ms('eager')}, torch.compile {ms('compile')}; speedup vs eager "
            f"{t.get('speedup_eager', 'n/a')}, vs torch.compile {t.get('speedup_compile', 'n/a')}")


def profile_text(ev: Any) -> str:
    """The Nsight Compute summary the evaluator gave (a text, or its numbers), empty when there is none."""
    if isinstance(getattr(ev, "summary", None), str) and ev.summary.strip():
        return ev.summary.strip()
    metrics = ev.metrics or {}
    for key in ("ncu_summary", "summary"):
        if isinstance(metrics.get(key), str) and metrics[key].strip():
            return metrics[key].strip()
    return "\n".join(f"- {k}: {v:.4g}" for k, v in metrics.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool))[:3000]


def improve_kernel(client: Any, *, reference: str, evaluate: Evaluate, rounds: int, start: str | None = None,
                   graph: str = "", similar: list[dict[str, str]] | None = None, lessons: list[str] | None = None,
                   on_event: Callable[[str], None] = lambda _: None, coder_tokens: int = 2500) -> LoopResult:
    """Plan, then up to ``rounds`` coder rounds; ``start`` (a template's kernel) is evaluated first and is the
    first "latest kernel" and the fallback. LLM failures end the rounds with the best kernel so far."""
    try:
        approach = plan_approach(client, reference=reference, graph=graph, similar=similar, lessons=lessons)
    except TunesmithError as exc:
        return LoopResult(approach=None, stopped=f"the LLM planner failed: {exc.line()}")
    on_event(f"planner: fusion: {approach.fusion[:120]}; tiling: {approach.tiling[:80]}; "
             f"reduction: {approach.reduction[:80]}")
    result = LoopResult(approach=approach)
    latest: Attempt | None = None
    if start is not None:
        latest = _record(result, Attempt(0, "template", start, evaluate(start)), on_event)
    for number in range(1, rounds + 1):
        mode: Mode | None = None
        feedback: Feedback | None = None
        try:
            if latest is not None and latest.ok:
                if latest.evaluation.timing is None:
                    result.stopped = "the latest kernel is correct and timing is unavailable: nothing to optimise against"
                    return result
                mode = "optimise"
                feedback = judge_optimise(client, source=latest.source, timing=timing_text(latest.evaluation),
                                          profile=profile_text(latest.evaluation),
                                          metrics=latest.evaluation.metrics)
            elif latest is not None:
                mode = "repair"
                ev = latest.evaluation
                feedback = judge_repair(client, reference=reference, source=latest.source, status=ev.status,
                                        detail=ev.detail, max_abs_err=ev.max_abs_err)
            if feedback is not None:
                on_event(f"judge ({mode}): {feedback.issue[:160]} -> {feedback.change[:160]}")
            draft = write_kernel(client, reference=reference, approach=approach,
                                 latest=latest.source if latest else None,
                                 latest_status=latest.line() if latest else "", feedback=feedback,
                                 feedback_mode=mode or "repair", max_tokens=coder_tokens)
        except TunesmithError as exc:  # invalid output after retries, the endpoint down, the token budget
            result.stopped = f"LLM call failed in round {number}: {exc.line()}"
            return result
        latest = _record(result, Attempt(number, "llm", draft.source, evaluate(draft.source), mode, feedback),
                         on_event)
    result.stopped = f"{rounds} round(s) done"
    return result


def _record(result: LoopResult, attempt: Attempt, on_event: Callable[[str], None]) -> Attempt:
    result.attempts.append(attempt)
    if better(attempt, result.best):
        result.best = attempt
    on_event(attempt.line() + (" (best so far)" if result.best is attempt else ""))
    return attempt
