"""Planner node: retries interrupted candidates, then asks the strategy (LLM planner or sampler)."""

from __future__ import annotations

from typing import Any

from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.tools.trials import pending_retries, strategy_history


def plan(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """Propose the next round's candidates, or a reason to stop."""
    session.sync_budget()
    reason = session.budget.exhausted()
    if reason:
        return {"stop_reason": reason, "proposals": []}
    trials = session.store.trials(session.study)
    retries = pending_retries(trials)
    if retries:
        session.emit("planner", f"retrying {len(retries)} candidate(s) interrupted by a killed run")
        return {"proposals": [c.model_dump(exclude={"key"}) for c in retries], "stop_reason": None}
    if state.get("stop_reason"):
        return {"proposals": []}
    n = min(session.job.strategy.batch, session.budget.trials_left)
    candidates = session.strategy.ask(strategy_history(trials), n)
    if not candidates:
        return {"stop_reason": "the strategy has nothing new to try (space exhausted)", "proposals": []}
    for c in candidates:
        session.emit("planner", f"{c.origin}: try {_fmt(c.config)}" + (f" — {c.rationale}" if c.rationale else ""),
                     config=c.config)
    return {"proposals": [c.model_dump(exclude={"key"}) for c in candidates], "round": state.get("round", 0) + 1}


def _fmt(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items())
