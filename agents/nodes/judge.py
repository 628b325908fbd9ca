"""Judge node: the verdict (better / worse / noise / invalid) is computed by code from the statistics.

An apparent win is re-measured (challenger and incumbent again, back to back) before it is declared;
the LLM, when present, only explains the verdict the numbers gave.
"""

from __future__ import annotations

from typing import Any

from tunesmith.agents.explain import explain_verdict
from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.stats import Comparison, compare, decide
from tunesmith.runners.types import Candidate, Trial, Verdict


def judge(state: StudyState, session: TuningSession) -> dict[str, Any]:
    incumbent_id = state.get("incumbent")
    awaiting = dict(state.get("awaiting_confirmation") or {})
    store = session.store
    finished = [store.trial(i) for i in state.get("finished", [])]
    remeasures = {t.candidate.key: t for t in finished if t.candidate.origin == "remeasure"}
    requeue: list[dict[str, Any]] = []
    judged: list[int] = []

    for trial in finished:
        if trial.candidate.origin == "remeasure" or trial.verdict is not None:
            continue
        incumbent = store.trial(incumbent_id) if incumbent_id is not None else None
        verdict, why, cmp = _first_look(trial, incumbent, session)
        if verdict is None:  # an apparent win: re-measure both before declaring it
            awaiting[str(trial.id)] = incumbent_id  # type: ignore[assignment]
            requeue += [_remeasure(incumbent.candidate), _remeasure(trial.candidate)]  # type: ignore[union-attr]
            store.set_verdict(trial.id, Verdict.NOISE, f"apparent win {why}; re-measuring")  # type: ignore[arg-type]
            session.emit("judge", f"trial #{trial.number}: apparent win {why} — re-measuring before believing it")
            continue
        if verdict in (Verdict.BASELINE, Verdict.BETTER):  # BETTER here only when re-measuring is off
            incumbent_id = trial.id
        _settle(session, trial, verdict, why, cmp)
        judged.append(trial.id)  # type: ignore[arg-type]

    for ch_id, inc_id in list(awaiting.items()):
        challenger, incumbent = store.trial(int(ch_id)), store.trial(inc_id)
        r_ch, r_inc = remeasures.get(challenger.candidate.key), remeasures.get(incumbent.candidate.key)
        if r_ch is None or r_inc is None:
            continue
        del awaiting[ch_id]
        verdict, why, cmp = _confirm(challenger, incumbent, r_ch, r_inc, session)
        if verdict == Verdict.BETTER:
            incumbent_id = challenger.id
        _settle(session, challenger, verdict, why, cmp)
        judged.append(challenger.id)  # type: ignore[arg-type]

    stop = _patience_exhausted(session)
    update: dict[str, Any] = {"incumbent": incumbent_id, "awaiting_confirmation": awaiting, "judged": judged,
                              "queue": requeue, "finished": []}
    if stop:
        update["stop_reason"] = stop
    return update


def _first_look(trial: Trial, incumbent: Trial | None, session: TuningSession) -> tuple[Verdict | None, str, Comparison | None]:
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
    cmp = compare(m.samples, incumbent.measurement.samples, minimize=session.job.objective.minimize,  # type: ignore[union-attr]
                  seed=trial.number)
    decision = decide(cmp, min_effect=session.job.objective.min_effect)
    text = f"{cmp.improvement:+.1%} [{cmp.low:+.1%}, {cmp.high:+.1%}] vs trial #{incumbent.number}"
    if decision == "better":
        if session.job.measure.remeasure:
            return None, text, cmp
        return Verdict.BETTER, text, cmp
    return Verdict(decision), text, cmp


def _confirm(ch: Trial, inc: Trial, r_ch: Trial, r_inc: Trial, session: TuningSession) -> tuple[Verdict, str, Comparison | None]:
    for t in (r_ch, r_inc):
        if t.measurement is None or not t.measurement.ok or not t.measurement.samples:
            detail = t.measurement.detail if t.measurement else "missing"
            return Verdict.NOISE, f"not confirmed: re-measure trial #{t.number} failed ({detail})", None
    minimize, eff = session.job.objective.minimize, session.job.objective.min_effect
    again = compare(r_ch.measurement.samples, r_inc.measurement.samples, minimize=minimize, seed=r_ch.number)  # type: ignore[union-attr]
    pooled = compare(ch.measurement.samples + r_ch.measurement.samples,  # type: ignore[union-attr]
                     inc.measurement.samples + r_inc.measurement.samples,  # type: ignore[union-attr]
                     minimize=minimize, seed=ch.number)
    text = (f"{pooled.improvement:+.1%} [{pooled.low:+.1%}, {pooled.high:+.1%}] vs trial #{inc.number} pooled over "
            f"{pooled.n_challenger}+{pooled.n_incumbent} samples; re-measure alone {again.improvement:+.1%}")
    if decide(again, min_effect=eff) == "better" and decide(pooled, min_effect=eff) == "better":
        return Verdict.BETTER, "confirmed " + text, pooled
    return Verdict.NOISE, "not confirmed on re-measure: " + text, pooled


def _settle(session: TuningSession, trial: Trial, verdict: Verdict, why: str, cmp: Comparison | None) -> None:
    explanation = why
    if verdict in (Verdict.BETTER, Verdict.WORSE):
        extra = explain_verdict(session, trial, verdict, why)
        if extra:
            explanation = f"{why}. LLM explanation: {extra}"
    session.store.set_verdict(trial.id, verdict, explanation)  # type: ignore[arg-type]
    session.emit("judge", f"trial #{trial.number}: {verdict.value} — {explanation}", trial=trial.number,
                 verdict=verdict.value, improvement=cmp.improvement if cmp else None)


def _remeasure(cand: Candidate) -> dict[str, Any]:
    data = cand.model_dump(exclude={"key"})
    data.update(origin="remeasure", rationale="re-measure before declaring a win")
    return data


def _patience_exhausted(session: TuningSession) -> str | None:
    patience = session.job.budget.patience
    if not patience:
        return None
    since = 0
    for t in session.store.trials(session.study, include_interrupted=False):
        if t.candidate.origin == "remeasure":
            continue
        since = 0 if t.verdict in (Verdict.BETTER, Verdict.BASELINE) else since + 1
    return f"no confirmed improvement in the last {since} trials (patience {patience})" if since >= patience else None
