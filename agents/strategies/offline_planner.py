"""What stands in for the LLM planner when there is none: one rule-ordered coordinate-descent pass, then TPE.

The pass starts at the baseline. For each parameter in ``rules`` order (the target's "most promising
first" list, then any parameter it did not name) it tries the parameter's other grid values with every
other parameter held at the incumbent; once all of them are measured, the incumbent moves to the best
of them if one beat it. The pass is reconstructed from the history on every ``ask``, so the strategy is
stateless and deterministic. When the pass is over, TPE, seeded with the whole history, proposes the
rest. Every proposal has origin ``planner`` and a one-line rationale.
"""

from __future__ import annotations

from collections.abc import Sequence

from tunesmith.runners.space import Value
from tunesmith.runners.types import Candidate, Trial

from .base import Strategy, objective_value
from .grid import Picker, complete_baseline, config_key
from .tpe import TPEStrategy

PREFIX = "offline planner"


class OfflinePlannerStrategy(Strategy):
    """Rule-ordered coordinate descent from the baseline (one pass), then TPE on the rest of the budget."""

    name = "offline_planner"

    def __init__(self, *args, points: int = 5, n_startup_trials: int = 4, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.points = points
        self.n_startup_trials = n_startup_trials
        named = [r for r in dict.fromkeys(self.rules) if r in self.space.names]
        self.order = named + [name for name in self.space.names if name not in named]

    def _better(self, a: float, b: float | None) -> bool:
        if b is None:
            return True
        return a < b if self.objective.minimize else a > b

    def _values(self, history: Sequence[Trial]) -> dict[str, float]:
        """Each key's latest objective value (OK, finished trials only)."""
        out: dict[str, float] = {}
        for trial in history:
            value = objective_value(trial)
            if value is not None:
                out[config_key(trial.candidate.config, trial.candidate.source)] = value
        return out

    def _pass(self, picker: Picker, history: Sequence[Trial]) -> bool:
        """Propose the pass's next untried neighbours; True once the whole pass has been proposed."""
        values = self._values(history)
        incumbent = complete_baseline(self.space, self.baseline)
        best = values.get(config_key(incumbent))
        for rank, name in enumerate(self.order, start=1):
            held = dict(incumbent)
            moved: tuple[dict[str, Value], float] | None = None
            for value in self.space.get(name).grid(self.points):
                if value == held[name]:
                    continue
                config = {**held, name: value}
                rationale = f"{PREFIX}: vary {name} (rule #{rank}) from {held[name]} to {value} around the best so far"
                picker.offer(config, "planner", rationale)
                score = values.get(config_key(config))
                if score is not None and self._better(score, best if moved is None else moved[1]):
                    moved = (config, score)
            if picker.full:
                return False
            if moved is not None:
                incumbent, best = moved
        return True

    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        picker = Picker(self, history, n)
        picker.offer_baseline(f"{PREFIX}: measure the baseline first")
        if picker.full or not self._pass(picker, history) or picker.full:
            return picker.picked
        tpe = TPEStrategy(
            self.space,
            self.objective,
            seed=self.seed,
            feasible=self.feasible,
            baseline=self.baseline,
            rules=self.order,
            n_startup_trials=self.n_startup_trials,
            points=self.points,
        )
        done = sum(objective_value(t) is not None for t in history)
        pending = [*history, *(Trial(study="offline", number=-1, candidate=c) for c in picker.picked)]
        for c in tpe.ask(pending, n - len(picker.picked)):
            picker.offer(
                c.config,
                "planner",
                f"{PREFIX}: coordinate pass done; TPE proposes from {done} measured trials",
            )
        return picker.picked
