"""LLM explanations of decisions that code already made (verdicts, lessons). Optional, budgeted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from tunesmith.agents.llm.client import LLMUnavailable
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
    if not _llm_usable(session):
        return ""
    prompt = render("judge.j2", target=session.target.describe(), config=trial.candidate.config,
                    verdict=verdict.value, numbers=numbers, metric=session.job.objective.metric)
    result = _ask(session, prompt, Explanation, "judge")
    return result.explanation if result else ""


def phrase_lesson(session: TuningSession, evidence: str) -> Lesson | None:
    if not _llm_usable(session):
        return None
    prompt = render("reflector.j2", target=session.target.describe(), evidence=evidence,
                    signature=session.target.signature())
    return _ask(session, prompt, Lesson, "reflector")  # type: ignore[return-value]


def _llm_usable(session: TuningSession) -> bool:
    """An LLM is there, its endpoint has not been given up on, and the token budget allows a call."""
    return (session.llm is not None and getattr(session.llm, "available", True)
            and session.budget.llm_allowed(800))


def _ask(session: TuningSession, prompt: str, schema: type[BaseModel], purpose: str) -> BaseModel | None:
    """A structured LLM call; a failure is recorded in the trail and the study goes on without it.

    When the failure made the client give up on the endpoint, its one note goes to the trail as well.
    """
    messages = [{"role": "system", "content": render("system.j2")}, {"role": "user", "content": prompt}]
    try:
        return session.llm.structured(messages, schema, purpose=purpose, max_tokens=200)
    except Exception as exc:  # noqa: BLE001 - a failed explanation must not stop the study
        if not isinstance(exc, LLMUnavailable):
            session.emit(purpose, f"LLM call failed ({type(exc).__name__}: {str(exc)[:160]}); continuing without it")
        notice = session.llm.take_notice() if hasattr(session.llm, "take_notice") else None
        if notice:
            session.emit(purpose, notice)
        return None
