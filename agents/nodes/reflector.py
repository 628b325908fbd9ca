"""Reflector node: writes the lessons the measurements prove into the store, for the next study."""

from __future__ import annotations

from typing import Any

from tunesmith.agents.explain import phrase_lesson
from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.fingerprint import fingerprint_id
from tunesmith.runners.stats import compare
from tunesmith.runners.types import Reflection, Status, Trial, Verdict


def reflect(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """One reflection per confirmed win and per distinct kind of failure."""
    trials = session.store.trials(session.study, include_interrupted=False)
    baseline = next((t for t in trials if t.verdict == Verdict.BASELINE), None)
    known = {r.insight for r in session.store.reflections(study=session.study)}
    for tid in state.get("judged", []):
        trial = session.store.trial(tid)
        if trial.verdict == Verdict.BETTER and baseline is not None:
            reflection = _win(session, trial, baseline)
        elif trial.verdict == Verdict.INVALID and trial.measurement and trial.measurement.status != Status.INFRASTRUCTURE:
            reflection = _failure(session, trial)
        else:
            continue
        if reflection.insight in known:
            continue
        known.add(reflection.insight)
        session.store.add_reflection(reflection)
        session.emit("reflector", f"lesson ({reflection.author}): {reflection.insight}", trial=trial.number)
    return {"judged": []}


def _hardware(session: TuningSession) -> str:
    fp = session.target.fingerprint()
    return f"{fp.get('gpu') or fp.get('cpu')} [{fingerprint_id(fp)}]"


def _diff(config: dict[str, Any], reference: dict[str, Any]) -> str:
    changed = [f"{k}={v} (was {reference.get(k)})" for k, v in config.items() if reference.get(k) != v]
    return ", ".join(changed) or "the same config"


def _win(session: TuningSession, trial: Trial, baseline: Trial) -> Reflection:
    obj = session.job.objective
    cmp = compare(trial.measurement.samples, baseline.measurement.samples, minimize=obj.minimize)  # type: ignore[union-attr]
    evidence = (f"{_diff(trial.candidate.config, baseline.candidate.config)} changed {obj.metric} by "
                f"{cmp.improvement:+.1%} [{cmp.low:+.1%}, {cmp.high:+.1%}] against the default "
                f"(trials #{trial.number} vs #{baseline.number}"
                f"{', confirmed by re-measure' if session.job.measure.remeasure else ''})")
    return _lesson(session, evidence, [baseline.number, trial.number], cmp.improvement, 0.6)


def _failure(session: TuningSession, trial: Trial) -> Reflection:
    m = trial.measurement
    evidence = f"{_fmt(trial.candidate.config)} fails with {m.status.value}: {m.detail} (trial #{trial.number})"  # type: ignore[union-attr]
    return _lesson(session, evidence, [trial.number], None, 0.5)


def _lesson(session: TuningSession, evidence: str, numbers: list[int], effect: float | None, confidence: float) -> Reflection:
    lesson = phrase_lesson(session, evidence)
    insight, author = evidence, "template"
    if lesson is not None and lesson.insight.strip():
        insight, author = f"{lesson.insight.strip()} (evidence: {evidence})", "llm"
        confidence = min(confidence, lesson.confidence)
    return Reflection(study=session.study, workload=session.target.signature(), hardware=_hardware(session),
                      insight=insight, evidence=numbers, effect=effect, confidence=confidence, author=author)


def _fmt(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items())


def finish(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """Close the study: record why it stopped and the LLM usage."""
    reason = state.get("stop_reason") or "done"
    session.emit("finish", f"study stopped: {reason}")
    session.store.set_status(session.study, "finished", llm_mode=session.llm_description)
    session.save_usage()
    return {}
