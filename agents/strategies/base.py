"""What to try next: the Strategy interface shared by samplers and planners."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import ClassVar

from tunesmith.runners.job import Objective
from tunesmith.runners.space import SearchSpace, Value
from tunesmith.runners.types import Candidate, Trial, TrialState


def objective_value(trial: Trial) -> float | None:
    """The trial's objective (median of its samples) if it finished OK with timing, else None."""
    m = trial.measurement
    if trial.state != TrialState.DONE or m is None or not m.ok or not m.samples:
        return None
    return m.median


class Strategy(abc.ABC):
    """Proposes candidates from the space and the study's history.

    Strategies are stateless between calls: everything they know comes from ``history`` (every trial of
    the study so far, finished or failed), so a resumed study continues exactly; there is no ``tell``.
    ``feasible`` tells whether a config passes the space's constraints and the target's checks and
    prediction (a study passes ``tunesmith.runners.admissibility.feasibility``, the check the coder
    applies; the default checks the space's constraints only); samplers propose only feasible,
    not-yet-tried configs (the baseline excepted, see ``Picker``). ``ask`` returns fewer than ``n``
    (possibly none) when the strategy has nothing new to offer.
    """

    name: ClassVar[str] = ""
    uses_llm: ClassVar[bool] = False

    def __init__(
        self,
        space: SearchSpace,
        objective: Objective,
        *,
        seed: int = 0,
        feasible: Callable[[dict[str, Value]], bool] | None = None,
        baseline: dict[str, Value] | None = None,
        rules: Sequence[str] = (),
    ) -> None:
        self.space = space
        self.objective = objective
        self.seed = seed
        self.feasible = feasible or (lambda config: not space.violations(config))
        self.baseline = baseline or space.defaults()
        self.rules = list(rules) or space.names  # parameter names, most promising first

    @abc.abstractmethod
    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        """Up to ``n`` new candidates."""

    # helpers shared by implementations -------------------------------------------------------------
    @staticmethod
    def tried_keys(history: Sequence[Trial]) -> set[str]:
        return {t.candidate.key for t in history}

    def best(self, history: Sequence[Trial]) -> Trial | None:
        scored = [(objective_value(t), t) for t in history]
        scored = [(v, t) for v, t in scored if v is not None]
        if not scored:
            return None
        pick = min if self.objective.minimize else max
        return pick(scored, key=lambda vt: vt[0])[1]
