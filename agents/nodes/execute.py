"""Run node: executes queued candidates through the target and runner, one stored trial each."""

from __future__ import annotations

from typing import Any

from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.types import Candidate, Trial
from tunesmith.tools.trials import run_candidate


def run(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """Run every queued candidate not already finished (idempotent after a resume)."""
    finished: list[int] = []
    for raw in state.get("queue", []):
        cand = Candidate.model_validate(raw)
        if cand.origin != "remeasure":
            done = session.store.finished(session.study, cand.key)
            if done is not None:  # measured before a crash: reuse, never repeat
                finished.append(done.id)  # type: ignore[arg-type]
                continue
        session.sync_budget()
        reason = session.budget.exhausted(count_trials=cand.origin != "remeasure")
        if reason:
            session.emit("run", f"not running the rest of the round: {reason}")
            break
        session.emit("run", f"running {describe(cand)}", config=cand.config, origin=cand.origin)
        trial = run_candidate(
            session.store, session.study, session.target, session.runner, cand,
            scratch_root=session.scratch_root, repeats=session.job.measure.repeats,
        )
        finished.append(trial.id)  # type: ignore[arg-type]
        session.emit("run", summarize(trial, session.job.objective.metric), trial=trial.number,
                     status=trial.measurement.status.value if trial.measurement else None)
    return {"finished": finished, "queue": []}


def describe(cand: Candidate) -> str:
    return ", ".join(f"{k}={v}" for k, v in cand.config.items()) + ("" if cand.origin != "remeasure" else " (re-measure)")


def summarize(trial: Trial, metric: str) -> str:
    m = trial.measurement
    if m is None:
        return f"trial #{trial.number}: no measurement"
    if not m.ok:
        return f"trial #{trial.number}: {m.status.value} — {m.detail}"
    if not m.samples:
        return f"trial #{trial.number}: ok (untimed) — {m.detail}"
    return f"trial #{trial.number}: {metric} median {m.median:.4g} (IQR {m.iqr:.2g}, n={len(m.samples)})"
