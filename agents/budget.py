"""One budget for every strategy: trials, wall time and LLM tokens."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from tunesmith.runners.job import Budget
from tunesmith.runners.selection import REPEAT_ORIGINS
from tunesmith.runners.types import Status, Trial


def rejected_before_running(trial: Trial) -> bool:
    """Whether the coder rejected the trial before anything ran (an inadmissible proposal).

    Such a trial is a ``constraints`` measurement with no wall time: ``run_candidate`` always records
    the time a run took, so a ``constraints`` result found by running (a workload exiting "this config
    cannot run here") has one and counts.
    """
    m = trial.measurement
    return m is not None and m.status == Status.CONSTRAINTS and not m.wall_s


def counted_trials(trials: Iterable[Trial]) -> int:
    """How many trials spend the trial budget: first-time evaluations that were run or started.

    The judge's re-measures and proposals rejected before running are not counted.
    """
    return sum(1 for t in trials if t.candidate.origin not in REPEAT_ORIGINS and not rejected_before_running(t))


@dataclass
class BudgetTracker:
    """Counts what a study has spent and says when it must stop.

    Trials count the candidates the study evaluated (``counted_trials``: proposals rejected before
    running, the judge's re-measures of an apparent win and interrupted runs are not counted, but the
    time of the last two is); wall time counts from the start of this ``tune run``; LLM tokens count the
    whole study.
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

    def count(self, trials: Iterable[Trial]) -> None:
        """Set ``trials_used`` from the study's stored trials (interrupted ones already left out)."""
        self.trials_used = counted_trials(trials)

    def exhausted(self, *, count_trials: bool = True) -> str | None:
        """Why the study must stop now, or None (``count_trials=False``: only time, for re-measures)."""
        if count_trials and self.trials_used >= self.budget.trials:
            return f"trial budget spent ({self.trials_used}/{self.budget.trials})"
        if self.elapsed_s >= self.budget.wall_time_s:
            return f"wall-time budget spent ({self.elapsed_s:.0f}/{self.budget.wall_time_s:.0f} s)"
        return None

    def llm_allowed(self, estimate: int = 0) -> bool:
        return self.tokens_used + estimate <= self.budget.llm_tokens
