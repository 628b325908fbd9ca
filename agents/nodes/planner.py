"""Planner node: retries interrupted candidates, then asks the strategy (LLM planner or sampler)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunesmith.agents.budget import rejected_before_running
from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.types import Trial

REJECTION_LIMIT = 20  # stop after this many proposals in a row that the coder rejected before running


def plan(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """Propose the next round's candidates, or a reason to stop."""
    session.sync_budget()
    reason = session.budget.exhausted()
    if reason:
        return {"stop_reason": reason, "proposals": []}
    trials = session.trials()  # in memory: only what changed since the last round is read
    retries = session.history.pending_retries()
    if retries:
        session.emit("planner", f"retrying {len(retries)} candidate(s) interrupted by a killed run")
        return {"proposals": [c.model_dump(exclude={"key"}) for c in retries], "stop_reason": None}
    if state.get("stop_reason"):
        return {"proposals": []}
    rejected = _rejected_in_a_row(trials)
    if rejected >= REJECTION_LIMIT:  # they spend no budget, so nothing else would stop the loop
        return {"stop_reason": f"the last {rejected} proposals were all rejected before running", "proposals": []}
    if state.get("round") == 1:  # the baseline is measured: its profile summary joins the reasoning trail
        from tunesmith.knowledge.profiles import profile_lines

        for line in profile_lines(list(trials), session.job.objective.minimize):
            session.emit("planner", line)
    slots = session.executor.slots if session.executor is not None else 1  # keep every device busy
    n = min(max(session.job.strategy.batch, slots), session.budget.trials_left)
    candidates = session.strategy.ask(session.history.for_strategy(), n)
    if not candidates:
        return {"stop_reason": "the strategy has nothing new to try (space exhausted)", "proposals": []}
    for c in candidates:
        session.emit("planner", f"{c.origin}: try {_fmt(c.config)}" + (f" — {c.rationale}" if c.rationale else ""),
                     config=c.config)
    return {"proposals": [c.model_dump(exclude={"key"}) for c in candidates], "round": state.get("round", 0) + 1}


def _rejected_in_a_row(trials: Sequence[Trial]) -> int:
    """How many of the latest first-time trials in a row the coder rejected before running.

    Reads from the newest trial back to the first one that ran: the cost is the length of the run.
    """
    count = 0
    for t in reversed(trials):
        if t.candidate.origin == "remeasure":
            continue
        if not rejected_before_running(t):
            break
        count += 1
    return count


def _fmt(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items())
