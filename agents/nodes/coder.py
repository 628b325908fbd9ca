"""Coder node: turns proposals into runnable candidates, rejecting what cannot run before it runs.

For config targets the coder completes and coerces configs and applies the one admissibility check
(``tunesmith.runners.admissibility``: ranges, constraints, the target's own checks and predictions) that
the strategies also use when they propose. Code-writing targets plug their source generation in here.
"""

from __future__ import annotations

from typing import Any

from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.admissibility import admissible
from tunesmith.runners.types import Candidate, Measurement, Status


def code(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """Validate proposals; inadmissible ones are stored as ``constraints`` trials and not run.

    Such a rejection is kept for the record (strategies see it as tried) but does not spend the trial
    budget (see ``tunesmith.agents.budget.rejected_before_running``).
    """
    queue: list[dict[str, Any]] = []
    space = session.target.space()
    for raw in state.get("proposals", []):
        proposed = Candidate.model_validate(raw)
        verdict = admissible(proposed, space, session.target)
        cand = verdict.candidate or proposed
        if not verdict.ok:
            _reject(session, cand, verdict.why)
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
    # wall_s stays 0: nothing ran (run_candidate always records the time a run took)
    session.store.finish_trial(trial.id, Measurement(status=Status.CONSTRAINTS, detail=why))  # type: ignore[arg-type]
    session.emit("coder", f"trial #{trial.number} rejected before running (not counted in the budget): {why}",
                 trial=trial.number)
