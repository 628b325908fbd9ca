"""LLM explanations of decisions that code already made (verdicts, lessons). Optional, budgeted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from tunesmith.agents.prompting import render
from tunesmith.runners.types import Trial, Verdict

if TYPE_CHECKING:
    from tunesmith.agents.session import TuningSession


class Explanation(BaseModel):
    """The LLM's explanation of a measured outcome (it may not change the verdict)."""

    explanation: str = Field(description="one or two sentences: the likely cause of the measured effect")


class Lesson(BaseModel):
    """A reusable lesson phrased by the LLM from measured evidence."""

    insight: str = Field(description="one sentence another engineer could act on")
    confidence: float = Field(ge=0, le=1, description="0..1, how general the lesson is likely to be")


def explain_verdict(session: TuningSession, trial: Trial, verdict: Verdict, numbers: str) -> str:
    """One or two sentences from the LLM, or '' offline / on failure / over budget."""
    if session.llm is None or not session.budget.llm_allowed(800):
        return ""
    prompt = render("judge.j2", target=session.target.describe(), config=trial.candidate.config,
                    verdict=verdict.value, numbers=numbers, metric=session.job.objective.metric)
    result = _ask(session, prompt, Explanation, "judge")
    return result.explanation if result else ""


def phrase_lesson(session: TuningSession, evidence: str) -> Lesson | None:
    if session.llm is None or not session.budget.llm_allowed(800):
        return None
    prompt = render("reflector.j2", target=session.target.describe(), evidence=evidence,
                    signature=session.target.signature())
    return _ask(session, prompt, Lesson, "reflector")  # type: ignore[return-value]


def _ask(session: TuningSession, prompt: str, schema: type[BaseModel], purpose: str) -> BaseModel | None:
    """A structured LLM call; a failure is recorded in the trail and the study goes on without it."""
    messages = [{"role": "system", "content": render("system.j2")}, {"role": "user", "content": prompt}]
    try:
        return session.llm.structured(messages, schema, purpose=purpose, max_tokens=200)
    except Exception as exc:  # noqa: BLE001 - a failed explanation must not stop the study
        session.emit(purpose, f"LLM call failed ({type(exc).__name__}: {str(exc)[:160]}); continuing without it")
        return None
