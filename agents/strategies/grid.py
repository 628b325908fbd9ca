"""Grid search, plus the small helpers every sampler shares (baseline first, dedupe, feasibility).

``GridStrategy`` walks the space's grid (``SearchSpace.grid`` order: the product of each parameter's
grid, last parameter fastest) after the baseline, skipping configs already in the history and configs
that the ``feasible`` callback or the space's constraints reject. Its answer depends on the history only;
what it derives from it (the tried grid points, how many leading points are used up) is kept between
asks and extended with the new trials (``base.Prefix``), so an ask costs the same late in a study.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from tunesmith.runners.space import SearchSpace, Value
from tunesmith.runners.types import Candidate, Origin, Trial

from .base import Prefix, Strategy, config_key

if TYPE_CHECKING:
    import random


GRID_CACHE_LIMIT = 16_384  # grids up to this many configs are listed once per strategy and kept


def derived_seed(seed: int, step: int) -> int:
    """A 32-bit seed for step ``step`` of a study seeded ``seed``.

    Hashing (rather than ``seed + step``) keeps studies with neighbouring seeds from replaying each
    other's random streams shifted by one trial.
    """
    digest = hashlib.sha256(f"tunesmith/{seed}/{step}".encode()).hexdigest()
    return int(digest[:8], 16)


def complete_baseline(space: SearchSpace, baseline: dict[str, Value]) -> dict[str, Value]:
    """The baseline with every parameter present, in the space's order (defaults fill the gaps)."""
    return {p.name: baseline.get(p.name, p.default) for p in space.params}


def clamp_floats(space: SearchSpace, config: dict[str, Value]) -> dict[str, Value]:
    """``config`` with float values pulled into their bounds: ``exp(log(x))`` rounding in log grids and
    log-uniform samples can land a hair outside ``[low, high]``, which ``Param.contains`` rejects.
    """
    out = dict(config)
    for p in space.params:
        value = out.get(p.name)
        if p.kind in ("float", "log_float") and isinstance(value, float):
            out[p.name] = min(max(value, float(p.low)), float(p.high))  # type: ignore[arg-type]
    return out


def iter_grid(space: SearchSpace, points: int = 5) -> Iterator[dict[str, Value]]:
    """The space's grid lazily, in ``SearchSpace.grid`` order, without configs breaking a constraint."""
    names = space.names
    for combo in itertools.product(*(p.grid(points) for p in space.params)):
        config = dict(zip(names, combo, strict=True))
        if not space.violations(config):
            yield config


def feasible_grid(strategy: Strategy, points: int = 5) -> list[tuple[dict[str, Value], str]]:
    """``iter_grid(strategy.space, points)`` as (config, key) pairs, listed once per strategy and kept."""
    cache: dict[int, list[tuple[dict[str, Value], str]]] = strategy.__dict__.setdefault("_grid_cache", {})
    if points in cache:
        return cache[points]
    listed = [(c, config_key(c)) for c in iter_grid(strategy.space, points)]
    if len(listed) <= GRID_CACHE_LIMIT:
        cache[points] = listed
    return listed


def enumerable(space: SearchSpace, points: int = 5) -> bool:
    """Whether the grid holds every value of every parameter (no continuous or sub-sampled ranges)."""
    for p in space.params:
        if p.kind in ("float", "log_float"):
            return False
        if p.kind == "int":
            step = p.step or 1
            if len(p.grid(points)) != (int(p.high) - int(p.low)) // step + 1:  # type: ignore[arg-type]
                return False
    return True


class Picker:
    """Collects up to ``n`` new candidates for one ``ask``: never a tried or already-picked key, never
    a config the strategy's ``feasible`` callback or the space's constraints reject.

    The baseline is the exception: it is offered whenever it fits the space's ranges, because it is the
    reference every result is compared with; if the target cannot run it, the coder records why.
    """

    def __init__(self, strategy: Strategy, history: Sequence[Trial], n: int) -> None:
        self.strategy = strategy
        self.n = n
        self.tried, covered = strategy.history_keys(history)  # kept by the strategy between asks: read only
        self.taken = {config_key(t.candidate.config, t.candidate.source) for t in history[covered:]}  # + picked
        self.picked: list[Candidate] = []

    @property
    def full(self) -> bool:
        return len(self.picked) >= self.n

    def fresh(self, config: dict[str, Value]) -> bool:
        key = config_key(config)
        return key not in self.tried and key not in self.taken

    def in_range(self, config: dict[str, Value]) -> bool:
        return all(p.name in config and p.contains(config[p.name]) for p in self.strategy.space.params)

    def admissible(self, config: dict[str, Value]) -> bool:
        if not self.in_range(config):
            return False
        return not self.strategy.space.violations(config) and bool(self.strategy.feasible(config))

    def offer(
        self, config: dict[str, Value], origin: Origin = "sampler", rationale: str = "", *, check: bool = True
    ) -> bool:
        """Pick ``config`` if there is room and it is new and feasible (in range only, with
        ``check=False``); True if it was picked.
        """
        if self.full:
            return False
        config = clamp_floats(self.strategy.space, config)
        if not self.fresh(config) or not (self.admissible(config) if check else self.in_range(config)):
            return False
        candidate = Candidate(config=dict(config), origin=origin, rationale=rationale)
        self.picked.append(candidate)
        self.taken.add(config_key(config))
        return True

    def offer_baseline(self, rationale: str = "the default configuration") -> bool:
        config = complete_baseline(self.strategy.space, self.strategy.baseline)
        return self.offer(config, "baseline", rationale, check=False)

    def offer_shuffled_grid(self, rng: random.Random, rationale: str, points: int = 5) -> None:
        """Fill the remaining room with untried grid configs in a random order drawn from ``rng``."""
        if self.full:
            return
        pool = [c for c, key in feasible_grid(self.strategy, points) if key not in self.tried and key not in self.taken]
        rng.shuffle(pool)
        for config in pool:
            if self.full:
                return
            self.offer(config, "sampler", rationale)


class GridStrategy(Strategy):
    """Exhaustive grid search: the baseline, then the grid in a fixed order, skipping tried and
    infeasible configs. Continuous parameters contribute ``points`` evenly spaced values each.
    """

    name = "grid"

    def __init__(self, *args, points: int = 5, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.points = points
        self._walk: Prefix[_Walk] = Prefix(_Walk, lambda walk, t: walk.tried.add(self._point(t)))

    def _point(self, trial: Trial) -> tuple[Value, ...] | None:
        return None if trial.candidate.source is not None else tuple(trial.candidate.config.get(k) for k in self.space.names)

    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        picker = Picker(self, history, n)
        picker.offer_baseline()
        names = self.space.names
        walk, covered = self._walk(history)
        tail = {self._point(t) for t in history[covered:]}
        size = self.space.size(self.points)
        combos = itertools.product(*(p.grid(self.points) for p in self.space.params))
        combos = itertools.islice(combos, walk.start, None)  # the points before are tried or inadmissible
        for index, combo in enumerate(combos, start=walk.start + 1):
            config = dict(zip(names, combo, strict=True))
            if index == walk.start + 1 and (combo in walk.tried or not picker.admissible(config)):
                walk.start = index  # dead for good: later asks start after it
                continue
            if picker.full:
                break
            if combo in walk.tried or combo in tail:
                continue
            picker.offer(config, "sampler", f"grid point {index} of {size}")
        return picker.picked


class _Walk:
    """What the grid strategy keeps between asks: the tried grid points of the history it has seen, and
    how many leading grid points are tried or inadmissible (every ask would skip them)."""

    def __init__(self) -> None:
        self.tried: set[tuple[Value, ...] | None] = set()
        self.start = 0
