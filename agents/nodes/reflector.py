"""Reflector node: writes the lessons the measurements prove into the store, for the next study."""

from __future__ import annotations

from typing import Any

from tunesmith.agents.explain import phrase_lesson
from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.fingerprint import fingerprint_id
from tunesmith.runners.selection import Speedup, verdict_records
from tunesmith.runners.types import Reflection, Status, Trial, Verdict


def reflect(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """One reflection per confirmed win and per distinct kind of failure.

    A win's evidence is the comparison its verdict used (handed over by the judge, or recorded in the
    reasoning trail after a resume): never recomputed.
    """
    known = session.known_insights()  # read once per run, then kept current here
    comparisons = dict(state.get("comparisons") or {})
    records: dict[int, Speedup] | None = None
    for tid in state.get("judged", []):
        trial = session.trial(tid)  # in memory: the judge kept it with its verdict
        if trial.verdict == Verdict.BETTER:
            raw = comparisons.get(str(tid))
            if raw is None:
                records = records if records is not None else verdict_records(session.store.events(session.study))
                sp = records.get(trial.number)
            else:
                sp = Speedup.from_dict(raw)
            if sp is None or not sp.available:
                continue
            reflection = _win(session, trial, sp)
        elif trial.verdict == Verdict.INVALID and trial.measurement and trial.measurement.status != Status.INFRASTRUCTURE:
            reflection = _failure(session, trial)
        else:
            continue
        if reflection.insight in known:
            continue
        known.add(reflection.insight)
        session.store.add_reflection(reflection)
        session.emit("reflector", f"lesson ({reflection.author}): {reflection.insight}", trial=trial.number)
    return {"judged": [], "comparisons": {}}


def _hardware(session: TuningSession) -> str:
    fp = session.target.fingerprint()
    return f"{fp.get('gpu') or fp.get('cpu')} [{fingerprint_id(fp)}]"


def _diff(config: dict[str, Any], reference: dict[str, Any]) -> str:
    changed = [f"{k}={v} (was {reference.get(k)})" for k, v in config.items() if reference.get(k) != v]
    return ", ".join(changed) or "the same config"


def _win(session: TuningSession, trial: Trial, sp: Speedup) -> Reflection:
    """Evidence from the verdict's own comparison: the config change against the reference it beat."""
    reference = session.store.trial_by_number(session.study, sp.reference) if sp.reference is not None else None
    ref_config = reference.candidate.config if reference is not None else {}
    evidence = (f"{_diff(trial.candidate.config, ref_config)} changed {session.job.objective.metric} by "
                f"{sp.gain_text()} against {sp.versus()} (trial #{trial.number} vs #{sp.reference}; {sp.basis})")
    return _lesson(session, evidence, [n for n in (sp.reference, trial.number) if n is not None], sp.improvement, 0.6)


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
    if session.retriever() is not None:  # lessons into the knowledge store; earlier rules this study tested re-weighed
        from tunesmith.agents.strategies.lesson_priors import describe_params

        session.knowledge.record_study(session.store, session.study, session.target.signature(), _hardware(session),
                                       session.llm_description, params=describe_params(session.target.space()))
        from tunesmith.knowledge.profiles import record_study_profiles  # observer profiles, summarised

        record_study_profiles(session.knowledge.store, session.store, session.study,
                              signature=session.target.signature(), hardware=_hardware(session))
    session.save_usage()
    return {}
