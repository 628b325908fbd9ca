"""The LLM planner: proposes configurations from the workload, the history and past lessons.

Every proposal is validated by code (types, ranges, constraints, not tried before); whatever the LLM gets
wrong, or when it is unavailable or over budget, the offline planner fills the round and the trail says so.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from tunesmith.agents.llm.client import LLMUnavailable
from tunesmith.agents.prompting import render
from tunesmith.agents.strategies.base import Strategy, objective_value
from tunesmith.agents.strategies.screening import screening_summary, summary_lines
from tunesmith.knowledge.profiles import profile_lines
from tunesmith.runners.errors import JobError
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Trial


class ProposedConfig(BaseModel):
    """One configuration the LLM proposes, with its reason."""

    config: dict[str, Any]
    rationale: str = ""


class Plan(BaseModel):
    """The planner's structured answer."""

    reasoning: str = ""
    candidates: list[ProposedConfig] = Field(default_factory=list)


MAX_ENUM = 64  # a numeric parameter with at most this many values is offered as an enum
PROMPT_BEST, PROMPT_LAST = 10, 15  # the prompt shows the baseline, the best and the latest trials, then counts


def _field_type(param: Param) -> tuple[Any, Any]:
    """The JSON type of one parameter for the plan schema: an enum where the values are few."""
    if param.kind == "bool":
        return bool, Field(None, alias=param.name, description=param.help or "on/off")
    values = list(param.values) if param.kind == "choice" else None
    if values is None and param.kind in ("int", "pow2"):
        grid = param.grid(MAX_ENUM + 1)
        values = grid if 0 < len(grid) <= MAX_ENUM else None
    if values is not None:
        return Literal[tuple(values)], Field(None, alias=param.name, description=param.help or f"one of {values}")  # type: ignore[valid-type]
    kind = int if param.kind in ("int", "pow2") else float
    return kind, Field(None, alias=param.name, ge=param.low, le=param.high,
                       description=param.help or f"{param.low}..{param.high}")


def plan_schema(space: SearchSpace, n: int) -> type[BaseModel]:
    """A Plan schema specific to ``space``: every parameter named and typed, at most ``n`` candidates.

    A parameter left out keeps the baseline's value, so an endpoint may propose "change only these".

    Endpoints that constrain decoding by the schema (llama.cpp's grammar, OpenAI's strict mode) then cannot
    emit an unknown name or an out-of-range choice, and a small model cannot ramble past the plan.
    """
    fields: dict[str, Any] = {}
    for i, param in enumerate(space.params):
        fields[f"p{i}"] = _field_type(param)  # safe field names; the JSON uses the parameter's own name
    config_model = create_model("Config", __config__=ConfigDict(extra="forbid", populate_by_name=True), **fields)
    proposal = create_model("ProposedConfig", config=(config_model, ...),
                            rationale=(str, Field("", max_length=300)))
    return create_model("Plan", candidates=(list[proposal], Field(min_length=1, max_length=max(1, n))),  # type: ignore[valid-type]
                        reasoning=(str, Field("", max_length=400)))


class LLMPlannerStrategy(Strategy):
    """Asks the LLM for the next configurations; falls back to ``fallback`` for what it cannot supply."""

    name = "planner"
    uses_llm = True

    def __init__(self, *args: Any, llm: Any, fallback: Strategy, describe: str = "",
                 lessons: Callable[[], list[str]] = list, tokens_left: Callable[[], int] = lambda: 10**9,
                 on_note: Callable[[str], None] = lambda _msg: None,
                 trials_left: Callable[[], int | None] = lambda: None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.llm, self.fallback, self.describe = llm, fallback, describe
        self.lessons, self.tokens_left, self.on_note = lessons, tokens_left, on_note
        self.trials_left = trials_left  # the study's trial budget left (None: not known), for the prompt

    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        tried = self.tried_set(history)
        if not tried:  # the baseline always comes first, measured, not guessed
            return self.fallback.ask(history, n)
        picked: list[Candidate] = []
        if self.tokens_left() < 1500:
            self.on_note("LLM token budget spent: the offline planner proposes this round")
        elif not getattr(self.llm, "available", True):
            pass  # the endpoint kept failing: the client said so once; the offline planner proposes
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
            trials_left=self.trials_left(), baseline=self.baseline, n=n,
            reflections=[*self.lessons()[:8], *profile_lines(list(history), self.objective.minimize)],
            **prompt_history(history, self.objective.minimize),
            screening=summary_lines(screening_summary(history, self.space, self.baseline, self.objective.minimize),
                                    self.baseline, self.objective.metric),
        )
        messages = [{"role": "system", "content": render("system.j2")}, {"role": "user", "content": prompt}]
        try:
            schema = plan_schema(self.space, n)
            answer = self.llm.structured(messages, schema, purpose="planner", max_tokens=200 + 120 * n)
            plan = Plan.model_validate(answer.model_dump(by_alias=True, exclude_none=True))
        except Exception as exc:  # noqa: BLE001 - the study must go on without the LLM
            if not isinstance(exc, LLMUnavailable):
                self.on_note(f"LLM planner failed ({type(exc).__name__}: {str(exc)[:160]}); offline planner stands in")
            notice = self.llm.take_notice() if hasattr(self.llm, "take_notice") else None
            if notice:
                self.on_note(notice)
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


def prompt_history(history: Sequence[Trial], minimize: bool, *, best: int = PROMPT_BEST,
                   last: int = PROMPT_LAST) -> dict[str, Any]:
    """The trials the prompt shows, bounded whatever the study's size: the baseline, the ``best`` best
    and the ``last`` latest (in trial order), and counts by status of the ``omitted`` rest.
    """
    ranked = [(v, i) for i, v in enumerate(objective_value(t) for t in history) if v is not None]
    top = heapq.nsmallest(best, ranked) if minimize else heapq.nlargest(best, ranked)
    keep = {i for _, i in top} | set(range(max(0, len(history) - last), len(history)))
    keep |= {next((i for i, t in enumerate(history) if t.candidate.origin == "baseline"), len(history))}
    shown = sorted(i for i in keep if i < len(history))
    counts: dict[str, int] = {}
    for i, t in enumerate(history):
        if i not in keep:
            status = t.measurement.status.value if t.measurement else "?"
            counts[status] = counts.get(status, 0) + 1
    omitted = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    return {"history": [_row(history[i]) for i in shown], "total": len(history),
            "omitted": len(history) - len(shown), "omitted_counts": omitted}


def _row(trial: Trial) -> dict[str, Any]:
    m = trial.measurement
    return {"number": trial.number, "config": trial.candidate.config, "status": m.status.value if m else "?",
            "median": objective_value(trial), "verdict": trial.verdict.value if trial.verdict else ""}
