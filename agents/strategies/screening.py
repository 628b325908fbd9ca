"""Screening: change one parameter at a time from the baseline and see how far the objective moves.

``screening_values`` says which values to try for a parameter (far ones: the grid's other end for an
ordered parameter sitting at one end, both ends when it sits inside, every other choice of a short
unordered list). ``screening_summary`` reads the results back from a study's history: every measured
config that differs from the baseline in exactly one parameter, with the relative change of the
objective it caused. ``rank_parameters`` orders parameters by the largest change any of their values
caused, so a later search spends its budget on the parameters that moved the metric. All three are
pure functions of their arguments (the offline planner stays stateless; the LLM planner shows the
summary in its prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tunesmith.runners.space import Param, SearchSpace, Value
from tunesmith.runners.types import Trial

from .base import objective_value
from .grid import complete_baseline, config_key

MAX_UNORDERED = 3  # alternatives screened for a choice of names (strings); more are thinned evenly


@dataclass(frozen=True)
class ScreenResult:
    """One screening measurement: ``parameter`` set to ``value``, everything else at the baseline.

    ``effect`` is the relative improvement over the baseline (0.25: 25 % better in the objective's
    direction, -0.5: 50 % worse); ``median`` the measured objective (None when the run failed).
    """

    parameter: str
    value: Value
    median: float | None
    effect: float | None

    def line(self, baseline_value: Value, metric: str = "objective") -> str:
        """One human-readable line, e.g. ``sync_every 1 -> 64: 96 % better (0.07 seconds)``."""
        head = f"{self.parameter} {baseline_value} -> {self.value}"
        if self.median is None or self.effect is None:
            return f"{head}: failed"
        word = "better" if self.effect >= 0 else "worse"
        return f"{head}: {abs(self.effect):.0%} {word} ({self.median:.4g} {metric})"


def ordered(param: Param) -> bool:
    """Whether the parameter's values have an order (numbers), so "far" means the other end."""
    if param.kind in ("int", "float", "log_float", "pow2"):
        return True
    return param.kind == "choice" and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in param.values
    )


def screening_values(param: Param, current: Value, points: int = 5) -> list[Value]:
    """The far values to screen ``param`` with when it is at ``current``: the other end of an ordered
    parameter (both ends from inside its range), every other choice of a short list of names."""
    grid = param.grid(points)
    if ordered(param):
        low, high = min(grid), max(grid)  # type: ignore[type-var]
        if current == low:
            return [high]
        if current == high:
            return [low]
        return [high, low]
    others = [v for v in grid if v != current]
    if len(others) <= MAX_UNORDERED:
        return others
    step = (len(others) - 1) / (MAX_UNORDERED - 1)
    return [others[round(i * step)] for i in range(MAX_UNORDERED)]


def relative_effect(value: float, base: float, *, minimize: bool) -> float:
    """How much better ``value`` is than ``base`` as a fraction of ``base`` (negative: worse)."""
    if base == 0:
        return 0.0 if value == base else (1.0 if (value < base) == minimize else -1.0)
    gain = (base - value) if minimize else (value - base)
    return gain / abs(base)


def screening_summary(
    history: Sequence[Trial], space: SearchSpace, baseline: dict[str, Value], minimize: bool
) -> list[ScreenResult]:
    """Every finished config in ``history`` one parameter away from ``baseline``, with its effect.

    Effects are relative to the baseline's measured median; while the baseline has none, they are None.
    The list follows the space's parameter order, then each parameter's grid order; a config measured
    more than once counts with its latest result.
    """
    base_cfg = complete_baseline(space, baseline)
    finished: dict[str, Trial] = {}
    for trial in history:
        if trial.measurement is not None:
            finished[config_key(trial.candidate.config, trial.candidate.source)] = trial
    base_trial = finished.get(config_key(base_cfg))
    base_value = objective_value(base_trial) if base_trial is not None else None
    found: dict[tuple[str, str], ScreenResult] = {}
    for key, trial in finished.items():
        config = trial.candidate.config
        if key == config_key(base_cfg) or trial.candidate.source is not None:
            continue
        if set(config) != set(base_cfg):
            continue
        changed = [name for name in space.names if config[name] != base_cfg[name]]
        if len(changed) != 1:
            continue
        value = objective_value(trial)
        effect = None
        if value is not None and base_value is not None:
            effect = relative_effect(value, base_value, minimize=minimize)
        name = changed[0]
        found[(name, repr(config[name]))] = ScreenResult(name, config[name], value, effect)
    out = []
    for param in space.params:
        mine = [r for (name, _), r in found.items() if name == param.name]
        grid = param.grid()
        mine.sort(key=lambda r: grid.index(r.value) if r.value in grid else len(grid))
        out.extend(mine)
    return out


def rank_parameters(
    results: Sequence[ScreenResult], order: Sequence[str]
) -> list[tuple[str, float | None]]:
    """``order``'s parameters by the largest |effect| screening saw (ties and unscreened keep ``order``).

    Returns (name, largest |effect| or None when nothing was measured for it).
    """
    size: dict[str, float] = {}
    for r in results:
        if r.effect is not None:
            size[r.parameter] = max(size.get(r.parameter, 0.0), abs(r.effect))
    position = {name: i for i, name in enumerate(order)}
    ranked = sorted(order, key=lambda n: (-size.get(n, -1.0), position[n]))
    return [(name, size.get(name)) for name in ranked]


def summary_lines(
    results: Sequence[ScreenResult], baseline: dict[str, Value], metric: str = "objective"
) -> list[str]:
    """The screening results as prompt/report lines, largest effect first."""
    ordered_results = sorted(results, key=lambda r: -abs(r.effect) if r.effect is not None else 1.0)
    return [r.line(baseline.get(r.parameter, "?"), metric) for r in ordered_results]
