"""Judge node: the verdict (better / worse / noise / invalid) is computed by code from the statistics.

An apparent win is re-measured (challenger and incumbent again, back to back) and decided on those fresh
samples alone before it is declared; the LLM, when present, only explains the verdict the numbers gave.
Each verdict's comparison (``selection.Speedup``) is recorded with it, in the reasoning trail's event
and in the state the reflector reads, so nothing downstream computes it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunesmith.agents.explain import explain_verdict
from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners import selection
from tunesmith.runners.secrets import redact
from tunesmith.runners.selection import Rules, Speedup
from tunesmith.runners.types import Candidate, Trial, Verdict


def judge(state: StudyState, session: TuningSession) -> dict[str, Any]:
    rules = Rules.from_job(session.job)
    incumbent_id = state.get("incumbent")
    awaiting = dict(state.get("awaiting_confirmation") or {})
    finished = [session.trial(i) for i in state.get("finished", [])]  # in memory: the run node kept them
    remeasures = {t.candidate.key: t for t in finished if t.candidate.origin == "remeasure"}
    requeue: list[dict[str, Any]] = []
    judged: list[int] = list(state.get("judged") or [])  # a round's first looks and confirmations both count
    comparisons: dict[str, dict[str, Any]] = dict(state.get("comparisons") or {})

    for trial in finished:
        if not selection.is_first_run(trial) or trial.verdict is not None:
            continue
        incumbent = session.trial(incumbent_id) if incumbent_id is not None else None
        verdict, why, sp = _first_look(trial, incumbent, session, rules)
        if verdict is None:  # an apparent win: re-measure both before declaring it
            awaiting[str(trial.id)] = incumbent_id  # type: ignore[assignment]
            requeue += [_remeasure(incumbent.candidate), _remeasure(trial.candidate)]  # type: ignore[union-attr]
            # No verdict is stored until the re-measure decides: a kill meanwhile leaves the trial unjudged,
            # and the resumed step judges it again (same seeded first look) and reuses finished re-measures.
            session.emit("judge", f"trial #{trial.number}: apparent win {why} — re-measuring before believing it",
                         trial=trial.number, verdict=None, improvement=sp.improvement if sp else None,
                         comparison=sp.as_dict() if sp else None)
            continue
        if verdict in (Verdict.BASELINE, Verdict.BETTER):  # BETTER here only when re-measuring is off
            incumbent_id = trial.id
        _settle(session, trial, verdict, why, sp)
        judged.append(trial.id)  # type: ignore[arg-type]
        if sp is not None:
            comparisons[str(trial.id)] = sp.as_dict()

    for ch_id, inc_id in list(awaiting.items()):
        challenger, incumbent = session.trial(int(ch_id)), session.trial(inc_id)
        r_ch, r_inc = remeasures.get(challenger.candidate.key), remeasures.get(incumbent.candidate.key)
        if r_ch is None or r_inc is None:
            continue
        del awaiting[ch_id]
        sp = selection.confirmation(challenger, incumbent, r_ch, r_inc, rules)
        verdict = Verdict.BETTER if sp.confirmed else Verdict.NOISE
        text = f"{sp.gain_text()} vs trial #{incumbent.number} on the {sp.basis}"
        why = f"confirmed {text}" if sp.confirmed else f"not confirmed on re-measure: {text}"
        if verdict == Verdict.BETTER:
            incumbent_id = challenger.id
        _settle(session, challenger, verdict, why, sp)
        judged.append(challenger.id)  # type: ignore[arg-type]
        comparisons[str(challenger.id)] = sp.as_dict()

    stop = _patience_exhausted(session)
    update: dict[str, Any] = {"incumbent": incumbent_id, "awaiting_confirmation": awaiting, "judged": judged,
                              "comparisons": comparisons, "queue": requeue, "finished": []}
    if stop:
        update["stop_reason"] = stop
    return update


def _first_look(trial: Trial, incumbent: Trial | None, session: TuningSession,
                rules: Rules) -> tuple[Verdict | None, str, Speedup | None]:
    m = trial.measurement
    if m is None or not m.ok:
        status = m.status.value if m else "missing"
        return Verdict.INVALID, f"{status}: {m.detail if m else 'no measurement'}", None
    if not m.samples:
        return Verdict.NOISE, f"correct, but untimed ({m.detail or 'timing unavailable'})", None
    if incumbent is None:
        why = "the default configuration" if trial.candidate.origin == "baseline" else (
            "first valid timed result: the reference for later trials")
        return Verdict.BASELINE, why, None
    sp = selection.first_look(trial, incumbent, rules)
    text = f"{sp.gain_text()} vs trial #{incumbent.number}"
    if sp.decision == "better":
        return (None if rules.remeasure else Verdict.BETTER), text, sp
    return Verdict(sp.decision), text, sp


def _settle(session: TuningSession, trial: Trial, verdict: Verdict, why: str, sp: Speedup | None) -> None:
    explanation = why
    if verdict in (Verdict.BETTER, Verdict.WORSE):
        extra = explain_verdict(session, trial, verdict, why)
        if extra:
            explanation = f"{why}. LLM explanation: {extra}"
    _record(session, trial, verdict, explanation, sp)


def _record(session: TuningSession, trial: Trial, verdict: Verdict, explanation: str, sp: Speedup | None,
            message: str | None = None) -> None:
    """The event (with the comparison as data) first, then the verdict: a kill in between re-judges the
    trial on resume, with the same seeded numbers, so no stored verdict lacks its recorded comparison."""
    session.emit("judge", message or f"trial #{trial.number}: {verdict.value} — {explanation}", trial=trial.number,
                 verdict=verdict.value, improvement=sp.improvement if sp else None,
                 comparison=sp.as_dict() if sp else None)
    session.store.set_verdict(trial.id, verdict, explanation)  # type: ignore[arg-type]
    session.remember(trial.model_copy(update={"verdict": verdict, "explanation": redact(explanation)}))
    session.trial_changed(trial.id)  # the in-memory history reads it again


def _remeasure(cand: Candidate) -> dict[str, Any]:
    data = cand.model_dump(exclude={"key"})
    data.update(origin="remeasure", rationale="re-measure before declaring a win")
    return data


def _patience_exhausted(session: TuningSession) -> str | None:
    patience = session.job.budget.patience
    if not patience:
        return None
    return _stop_for_patience(session.trials(), patience)


def _stop_for_patience(trials: Sequence[Trial], patience: int) -> str | None:
    """Why to stop when ``patience`` first runs in a row brought no confirmed win, else None.

    Counts back from the newest trial to the last win (or the baseline): the cost is that distance,
    which patience bounds, not the study's size.
    """
    since = 0
    for t in reversed(trials):
        if not selection.is_first_run(t):
            continue
        if t.verdict in (Verdict.BETTER, Verdict.BASELINE):
            break
        since += 1
    return f"no confirmed improvement in the last {since} trials (patience {patience})" if since >= patience else None
