"""The LLM planner: proposes configurations from the workload, the history and past lessons.

Every proposal is validated by code (types, ranges, constraints, not tried before); whatever the LLM gets
wrong, or when it is unavailable or over budget, the offline planner fills the round and the trail says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from tunesmith.agents.prompting import render
from tunesmith.agents.strategies.base import Strategy, objective_value
from tunesmith.runners.errors import JobError
from tunesmith.runners.types import Candidate, Trial


class ProposedConfig(BaseModel):
    """One configuration the LLM proposes, with its reason."""

    config: dict[str, Any]
    rationale: str = ""


class Plan(BaseModel):
    """The planner's structured answer."""

    reasoning: str = ""
    candidates: list[ProposedConfig] = Field(default_factory=list)


class LLMPlannerStrategy(Strategy):
    """Asks the LLM for the next configurations; falls back to ``fallback`` for what it cannot supply."""

    name = "planner"
    uses_llm = True

    def __init__(self, *args: Any, llm: Any, fallback: Strategy, describe: str = "",
                 lessons: Callable[[], list[str]] = list, tokens_left: Callable[[], int] = lambda: 10**9,
                 on_note: Callable[[str], None] = lambda _msg: None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.llm, self.fallback, self.describe = llm, fallback, describe
        self.lessons, self.tokens_left, self.on_note = lessons, tokens_left, on_note

    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        tried = self.tried_keys(history)
        if not tried:  # the baseline always comes first, measured, not guessed
            return self.fallback.ask(history, n)
        picked: list[Candidate] = []
        if self.tokens_left() < 1500:
            self.on_note("LLM token budget spent: the offline planner proposes this round")
        else:
            picked = self._from_llm(history, n, tried)
        if len(picked) < n:
            extra = [c for c in self.fallback.ask(history, n) if c.key not in {p.key for p in picked}]
            if extra and picked:
                self.on_note(f"offline planner fills {min(len(extra), n - len(picked))} slot(s) the LLM left")
            picked += extra[: n - len(picked)]
        return picked

    def _from_llm(self, history: Sequence[Trial], n: int, tried: set[str]) -> list[Candidate]:
        prompt = render(
            "planner.j2", target=self.describe, direction=self.objective.direction, metric=self.objective.metric,
            trials_left=n, baseline=self.baseline, reflections=self.lessons()[:8], n=n,
            history=[_row(t) for t in history],
        )
        messages = [{"role": "system", "content": render("system.j2")}, {"role": "user", "content": prompt}]
        try:
            plan: Plan = self.llm.structured(messages, Plan, purpose="planner")
        except Exception as exc:  # noqa: BLE001 - the study must go on without the LLM
            self.on_note(f"LLM planner failed ({type(exc).__name__}: {str(exc)[:160]}); offline planner stands in")
            return []
        out: list[Candidate] = []
        for proposal in plan.candidates:
            try:
                config = self.space.validate_config(proposal.config, where="LLM proposal")
            except JobError as exc:
                self.on_note(f"discarded an LLM proposal: {exc.line()}")
                continue
            cand = Candidate(config=config, origin="planner", rationale=("LLM: " + proposal.rationale)[:300])
            if cand.key in tried or any(c.key == cand.key for c in out):
                self.on_note("discarded an LLM proposal that repeats a tried config")
            elif not self.feasible(config):
                self.on_note(f"discarded an infeasible LLM proposal {config}")
            else:
                out.append(cand)
        if plan.reasoning:
            self.on_note(f"LLM reasoning: {plan.reasoning[:300]}")
        return out[:n]


def _row(trial: Trial) -> dict[str, Any]:
    m = trial.measurement
    return {"number": trial.number, "config": trial.candidate.config, "status": m.status.value if m else "?",
            "median": objective_value(trial), "verdict": trial.verdict.value if trial.verdict else ""}
