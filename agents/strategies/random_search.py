"""Seeded random search: the baseline, then uniformly drawn feasible configs that were not tried yet."""

from __future__ import annotations

import random
from collections.abc import Sequence

from tunesmith.runners.types import Candidate, Trial

from .base import Strategy
from .grid import Picker, derived_seed, enumerable

ENUMERATE_LIMIT = 4096  # discrete spaces up to this size are drawn from the exact list of untried configs
GRID_FALLBACK_LIMIT = 100_000  # after failed rejection sampling, enumerate grids up to this size


def fill_random(
    picker: Picker,
    rng: random.Random,
    *,
    points: int = 5,
    attempts_per_candidate: int = 64,
    rationale: str = "uniform random sample",
) -> None:
    """Fill ``picker`` with random feasible untried configs drawn from ``rng``.

    A small discrete space is drawn without replacement from its list of untried configs, which is
    exact and knows when the space is exhausted. Otherwise configs are rejection-sampled from each
    parameter's ``sample`` with a bounded number of attempts, then the remaining grid is shuffled and
    walked if it is small enough to list.
    """
    space = picker.strategy.space
    if picker.full:
        return
    if enumerable(space, points) and space.size(points) <= ENUMERATE_LIMIT:
        picker.offer_shuffled_grid(rng, rationale, points)
        return
    attempts = attempts_per_candidate * (picker.n - len(picker.picked))
    for _ in range(attempts):
        if picker.full:
            return
        picker.offer({p.name: p.sample(rng) for p in space.params}, "sampler", rationale)
    if not picker.full and space.size(points) <= GRID_FALLBACK_LIMIT:
        picker.offer_shuffled_grid(rng, f"{rationale} (from the remaining grid)", points)


class RandomStrategy(Strategy):
    """Random search seeded by (seed, number of trials so far): a resumed study draws exactly what an
    uninterrupted one would have drawn. Proposes the baseline first.
    """

    name = "random"

    def __init__(self, *args, points: int = 5, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.points = points

    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        picker = Picker(self, history, n)
        picker.offer_baseline()
        rng = random.Random(derived_seed(self.seed, len(history)))
        fill_random(picker, rng, points=self.points)
        return picker.picked
