"""Coder node: turns proposals into runnable candidates, rejecting what cannot run before it runs.

For config targets the coder validates and normalises configs (types, ranges, constraints, the target's
own checks and predictions). Code-writing targets plug their source generation in here.
"""

from __future__ import annotations

from typing import Any

from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.errors import JobError
from tunesmith.runners.types import Candidate, Measurement, Status


def code(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """Validate proposals; infeasible ones are stored as ``constraints`` trials and not run."""
    queue: list[dict[str, Any]] = []
    space = session.target.space()
    for raw in state.get("proposals", []):
        cand = Candidate.model_validate(raw)
        try:
            config = space.validate_config(cand.config, where="candidate")
        except JobError as exc:
            _reject(session, cand, exc.line())
            continue
        cand = cand.model_copy(update={"config": config})
        cand = Candidate.model_validate(cand.model_dump(exclude={"key"}))  # recompute the key
        reasons = space.violations(config) + session.target.check(cand)
        prediction = session.target.predict(cand)
        if prediction is not None and not prediction.feasible:
            reasons.append(f"predicted infeasible: {prediction.reason}")
        if reasons:
            _reject(session, cand, "; ".join(reasons))
            continue
        if cand.origin != "remeasure" and session.store.finished(session.study, cand.key):
            session.emit("coder", f"skipping {cand.key}: already measured in this study")
            continue
        queue.append(cand.model_dump(exclude={"key"}))
    if queue:
        session.emit("coder", f"{len(queue)} candidate(s) ready to run")
    return {"queue": queue, "proposals": []}


def _reject(session: TuningSession, cand: Candidate, why: str) -> None:
    trial = session.store.start_trial(session.study, cand)
    session.store.finish_trial(trial.id, Measurement(status=Status.CONSTRAINTS, detail=why))  # type: ignore[arg-type]
    session.emit("coder", f"trial #{trial.number} rejected before running: {why}", trial=trial.number)
