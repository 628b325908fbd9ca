"""A tuning session: everything one `tune run` needs, built from a job file, closed on every exit path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.agents.budget import BudgetTracker
from tunesmith.agents.strategies.base import Strategy
from tunesmith.knowledge.study_store import StudyInfo, StudyStore
from tunesmith.runners.base import Runner, Target
from tunesmith.runners.job import Job

Observer = Callable[[str, str, dict[str, Any]], None]


@dataclass
class TuningSession:
    """The live objects behind a study. Graph nodes receive it; the checkpointed state holds only ids."""

    job: Job
    target: Target
    runner: Runner
    store: StudyStore
    strategy: Strategy
    budget: BudgetTracker
    state_dir: Path
    info: StudyInfo
    resumed: bool = False
    llm: Any = None  # tunesmith.agents.llm.client.LLMClient, or None in offline mode
    llm_mode: str = "offline"
    llm_description: str = "offline"
    observers: list[Observer] = field(default_factory=list)

    @property
    def study(self) -> str:
        return self.job.name

    @property
    def scratch_root(self) -> Path:
        return self.state_dir / "scratch"

    def emit(self, node: str, message: str, **data: Any) -> None:
        """Record what an agent did (the reasoning trail) and tell the live view."""
        self.store.add_event(self.study, node, message, data)
        for observer in self.observers:
            observer(node, message, data)

    def llm_tokens_used(self) -> int:
        """Tokens the study's LLM ledger has counted (it is restored from the store on resume)."""
        return int(self.llm.ledger.tokens) if self.llm is not None else 0

    def save_usage(self) -> None:
        if self.llm is not None:
            self.store.save_usage(self.study, {"llm": self.llm.ledger.to_dict(), "summary": self.llm.ledger.summary()})

    def sync_budget(self) -> None:
        trials = self.store.trials(self.study, include_interrupted=False)
        self.budget.trials_used = sum(1 for t in trials if t.candidate.origin != "remeasure")
        self.budget.tokens_used = self.llm_tokens_used()
        self.save_usage()
