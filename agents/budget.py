"""One budget for every strategy: trials, wall time and LLM tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tunesmith.runners.job import Budget


@dataclass
class BudgetTracker:
    """Counts what a study has spent and says when it must stop.

    Trials count the candidates the study evaluated (rejected ones included; the judge's re-measures of
    an apparent win and interrupted runs are not counted, but their time is); wall time counts from the
    start of this ``tune run``; LLM tokens count the whole study.
    """

    budget: Budget
    trials_used: int = 0
    tokens_used: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def trials_left(self) -> int:
        return max(0, self.budget.trials - self.trials_used)

    @property
    def tokens_left(self) -> int:
        return max(0, self.budget.llm_tokens - self.tokens_used)

    def exhausted(self, *, count_trials: bool = True) -> str | None:
        """Why the study must stop now, or None (``count_trials=False``: only time, for re-measures)."""
        if count_trials and self.trials_used >= self.budget.trials:
            return f"trial budget spent ({self.trials_used}/{self.budget.trials})"
        if self.elapsed_s >= self.budget.wall_time_s:
            return f"wall-time budget spent ({self.elapsed_s:.0f}/{self.budget.wall_time_s:.0f} s)"
        return None

    def llm_allowed(self, estimate: int = 0) -> bool:
        return self.tokens_used + estimate <= self.budget.llm_tokens
