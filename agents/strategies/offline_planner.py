"""What stands in for the LLM planner when there is none: screen, then search where the metric moved.

1. **Baseline** first.
2. **Screening**: each parameter, in ``rules`` order (the target's "most promising first" list, then any
   parameter it did not name), is set to a far value with every other parameter at the baseline (see
   ``screening.screening_values``: the other end of an ordered range, both ends from inside it, each
   other choice of a short list). When that costs more than a third of the space, one far value per
   parameter. A far value the feasibility check refuses is replaced by the next one towards the baseline.
3. **Ranking**: parameters are ordered by the largest relative change screening saw (``rank_parameters``;
   rules order breaks ties), and the screening winners of every parameter are tried together once.
4. **Local search**: from the best config so far, coordinate descent over the ranked parameters, the
   others held: an ordered parameter is walked outwards from the incumbent's value step by step while
   each step improves, a choice of names tries every value; the incumbent moves to the line's best. A
   second pass over the parameters that mattered runs if the first one moved.
5. **TPE**, seeded with the whole history, proposes the rest.

Every step is reconstructed from the history on each ``ask`` (the strategy is stateless and
deterministic, so a resumed study continues exactly); what it derives from the history (each config's
latest value, the screening runs, the TPE study) is kept between asks and extended with the new trials
only (``base.Prefix``), so an ask costs the same late in a long study. Every proposal has origin ``planner`` and a
one-line rationale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tunesmith.runners.space import Value
from tunesmith.runners.types import Candidate, Trial

from .base import Prefix, Strategy, objective_value
from .grid import Picker, complete_baseline, config_key
from .guided_start import offer_guided, small_budget
from .lesson_priors import Prior, hinted_values, map_lessons, ordered_by_priors, role_boosts
from .screening import ScreenResult, ordered, rank_parameters, screening_summary, screening_values
from .tpe import TPEStrategy

PREFIX = "offline planner"
Config = dict[str, Value]


class OfflinePlannerStrategy(Strategy):
    """Screening from the baseline, coordinate descent over the parameters that moved the metric
    (largest effect first), then TPE on the rest of the budget.
    """

    name = "offline_planner"
    passes = 2  # coordinate-descent passes (the second only over parameters screening found to matter)

    def __init__(self, *args, points: int = 5, n_startup_trials: int = 4,  # type: ignore[no-untyped-def]
                 priorities: Callable[[Sequence[Trial]], Sequence[str] | None] | None = None,
                 budget: int | None = None, lessons: Callable[[], Sequence[object]] | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lessons = lessons  # earlier studies' lessons (knowledge hits), mapped onto this space once
        self.priors: list[Prior] | None = None
        self.priorities = priorities  # the target's order from what has run (e.g. the baseline's I/O trace)
        self.budget = budget  # the study's trial budget: a small one takes the guided start (guided_start.py)
        self.points = points
        self.n_startup_trials = n_startup_trials
        named = [r for r in dict.fromkeys(self.rules) if r in self.space.names]
        self.order = named + [name for name in self.space.names if name not in named]
        self._base = complete_baseline(self.space, self.baseline)
        self._seen: Prefix[_Seen] = Prefix(_Seen, lambda seen, t: seen.add(t, self._screening))
        self._tpe_strategy: TPEStrategy | None = None

    def _better(self, a: float, b: float | None) -> bool:
        if b is None:
            return True
        return a < b if self.objective.minimize else a > b

    def _screening(self, trial: Trial) -> bool:
        """Whether ``trial`` may be a screening run: the baseline's parameters, at most one changed."""
        config = trial.candidate.config
        if trial.candidate.source is not None or set(config) != set(self._base):
            return False
        return sum(config[name] != self._base[name] for name in self._base) <= 1

    def _derived(self, history: Sequence[Trial]) -> tuple[set[str], dict[str, float], list[Trial]]:
        """Every tried key, each key's latest objective value (OK, finished trials only), and the trials
        that may be screening runs, in history order (kept between asks, extended with new trials)."""
        seen, covered = self._seen(history)
        tried, values, screening = seen.tried, seen.values, seen.screening
        tail = history[covered:]
        if tail:
            tried, values, screening = set(tried), dict(values), list(screening)
            for trial in tail:
                _Seen.add_to(trial, self._screening, tried, values, screening)
        return tried, values, screening

    # -- screening ----------------------------------------------------------------------------------
    def screening_plan(self, base: Config) -> list[tuple[str, list[Value]]]:
        """(parameter, values in preference order) slots: the far value first, then the values between
        it and the baseline, to fall back on when the far one is infeasible.
        """
        slots: list[tuple[str, list[Value]]] = []
        for name in self.order:
            param = self.space.get(name)
            grid = param.grid(self.points)
            hint = hinted_values(self.priors or []).get(name)  # a lesson's value is screened first
            fars = screening_values(param, base[name], self.points)
            for far in sorted(fars, key=lambda v, h=hint: v != h) if hint in fars else fars:
                if ordered(param):
                    ranked = sorted(grid, key=lambda v, f=far: abs(v - f))  # type: ignore[operator, misc]
                    toward = [v for v in ranked if v != base[name] and _between(v, far, base[name])]
                    slots.append((name, toward or [far]))
                else:
                    slots.append((name, [far]))
        if len(slots) > max(len(self.order), self.space.size(self.points) // 3):
            named = {pr.param for pr in self.priors or []}  # a knob a lesson names keeps all its values
            first: dict[str, tuple[str, list[Value]]] = {}
            for name, values in slots:
                first.setdefault(name, (name, values))
            slots = [s for s in slots if s[0] in named or first[s[0]][1] is s[1]]
        return slots

    def _screen(self, picker: Picker, base: Config, tried: set[str]) -> list[Config]:
        """Offer the screening configs not yet tried; the screening configs (tried or offered)."""
        configs = []
        for rank, (name, values) in enumerate(self.screening_plan(base), start=1):
            for value in values:
                config = {**base, name: value}
                if config_key(config) in tried:
                    configs.append(config)
                    break
                if not picker.admissible(config):
                    continue  # infeasible: the next value towards the baseline stands in
                if picker.full:
                    return configs
                rationale = f"{PREFIX}: screen {name} (#{rank}): {base[name]} -> {value}, all else at the baseline"
                picker.offer(config, "planner", rationale)
                configs.append(config)
                break
        return configs

    # -- local search -------------------------------------------------------------------------------
    def _line(
        self, picker: Picker, incumbent: Config, best: float | None, name: str, why: str, values: dict[str, float]
    ) -> tuple[Config, float] | None:
        """Offer the next untried configs on ``name``'s line through ``incumbent``; the measured config
        on it that beats ``best``, if any.

        An ordered parameter is walked outwards from the incumbent's value, one step at a time, in each
        direction until a step is no better than the one before (its next step waits for its result);
        a choice of names tries every other value.
        """
        param = self.space.get(name)
        grid = param.grid(self.points)
        current = incumbent[name]
        if ordered(param) and current in grid:
            grid = sorted(grid)  # type: ignore[type-var]
            i = grid.index(current)
            walks, stepwise = [grid[i + 1 :], grid[:i][::-1]], True
        else:
            walks, stepwise = [[v for v in grid if v != current]], False
        moved: tuple[Config, float] | None = None
        for walk in walks:
            previous = best
            for value in walk:
                config = {**incumbent, name: value}
                score = values.get(config_key(config))
                if score is None:  # untried: offer it; pending, failed or infeasible: nothing to offer
                    picker.offer(config, "planner", f"{PREFIX}: vary {name} from {current} to {value} {why}")
                    if stepwise:
                        break
                    continue
                if self._better(score, best if moved is None else moved[1]):
                    moved = (config, score)
                if stepwise and not self._better(score, previous):
                    break
                previous = score
        return moved

    def _descend(
        self, picker: Picker, start: Config, ranked: list[tuple[str, float | None]], values: dict[str, float]
    ) -> bool:
        """Coordinate descent from ``start``; True once every line of it has been proposed and measured
        (or given up on)."""
        incumbent, best = start, values.get(config_key(start))
        threshold = self.objective.min_effect
        for sweep in (1, 2)[: self.passes]:
            moved_any = False
            for rank, (name, effect) in enumerate(ranked, start=1):
                if sweep == 2 and (effect is None or effect < threshold):
                    continue
                size = "unmeasured" if effect is None else f"{effect:.0%} in screening"
                why = f"around the best so far (effect #{rank}: {size})"
                moved = self._line(picker, incumbent, best, name, why, values)
                if picker.full:
                    return False
                if moved is not None:
                    (incumbent, best), moved_any = moved, True
            if not moved_any:
                break
        return True

    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        picker = Picker(self, history, n)
        picker.offer_baseline(f"{PREFIX}: measure the baseline first")
        if picker.full:
            return picker.picked
        tried, values, screening = self._derived(history)
        if self.priors is None:  # lessons first, retrieved once: a resumed study reorders the same way
            self.priors = map_lessons(self.lessons() if self.lessons else [], self.space, self._base)
            self.order = ordered_by_priors(self.order, self.priors)
        first = self.priorities(history) if self.priorities is not None else None
        if first:  # a function of the history: a resumed study reorders the same way
            self.order = [*dict.fromkeys(n for n in first if n in self.space.names),
                          *(n for n in self.order if n not in first)]
        if small_budget(self.space, self.budget) and len(history) < (self.budget or 0):
            offer_guided(picker, history, self._base, self.order, PREFIX,  # too few trials to screen
                         boosts=role_boosts(self.priors))
            if picker.full:
                return picker.picked
        base = self._base
        screened = self._screen(picker, base, tried)
        if picker.full:
            return picker.picked
        keys = {config_key(c) for c in screened}
        results = [  # the planned screening runs only, so later one-away configs do not reorder the search
            r for r in screening_summary(screening, self.space, base, self.objective.minimize)
            if config_key({**base, r.parameter: r.value}) in keys
        ]
        ranked = rank_parameters(results, self.order)
        best: dict[str, ScreenResult] = {}
        for r in results:  # each parameter's best screening value, if it beat the baseline
            if r.effect is not None and r.effect > 0 and r.effect > getattr(best.get(r.parameter), "effect", 0):
                best[r.parameter] = r
        winners: Config = {name: r.value for name, r in best.items()}
        phase = [base, *screened]
        if len(winners) > 1:
            combined = {**base, **winners}
            names = ", ".join(f"{k}={v}" for k, v in winners.items())
            picker.offer(combined, "planner", f"{PREFIX}: combine the screening winners ({names})")
            phase.append(combined)
            if picker.full:
                return picker.picked
        scored = [(values[config_key(c)], c) for c in phase if config_key(c) in values]
        start = base
        for score, config in scored:
            if self._better(score, values.get(config_key(start))):
                start = config
        if not self._descend(picker, start, ranked, values) or picker.full:
            return picker.picked
        self._tpe(picker, history, values)
        return picker.picked

    def _tpe(self, picker: Picker, history: Sequence[Trial], values: dict[str, float]) -> None:
        tpe = self._tpe_strategy
        if tpe is None:  # one for the instance, so its study is kept between asks
            tpe = self._tpe_strategy = TPEStrategy(
                self.space,
                self.objective,
                seed=self.seed,
                feasible=self.feasible,
                baseline=self.baseline,
                rules=self.order,
                n_startup_trials=self.n_startup_trials,
                points=self.points,
            )
        pending = [*history, *(Trial(study="offline", number=-1, candidate=c) for c in picker.picked)]
        for c in tpe.ask(pending, picker.n - len(picker.picked)):
            rationale = f"{PREFIX}: screening and local search done; TPE proposes from {len(values)} measured configs"
            picker.offer(c.config, "planner", rationale)


class _Seen:
    """What the offline planner derives from the settled part of a history: the tried keys, each key's
    latest value, and the trials that may be screening runs."""

    def __init__(self) -> None:
        self.tried: set[str] = set()
        self.values: dict[str, float] = {}
        self.screening: list[Trial] = []

    def add(self, trial: Trial, screening: Callable[[Trial], bool]) -> None:
        self.add_to(trial, screening, self.tried, self.values, self.screening)

    @staticmethod
    def add_to(
        trial: Trial, screening: Callable[[Trial], bool], tried: set[str], values: dict[str, float], runs: list[Trial]
    ) -> None:
        key = config_key(trial.candidate.config, trial.candidate.source)
        tried.add(key)
        value = objective_value(trial)
        if value is not None:
            values[key] = value
        if screening(trial):
            runs.append(trial)


def _between(value: Value, far: Value, base: Value) -> bool:
    """Whether ``value`` lies from ``far`` up to (not including) ``base`` on an ordered parameter."""
    low, high = (far, base) if far < base else (base, far)  # type: ignore[operator]
    return low <= value <= high and value != base  # type: ignore[operator]
