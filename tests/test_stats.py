"""Statistics the judge relies on: medians, IQR, bootstrap comparisons and decisions."""

from __future__ import annotations

import random

from tunesmith.runners.stats import compare, decide, iqr, median


def test_median_and_iqr() -> None:
    assert median([3, 1, 2]) == 2
    assert iqr([1, 2, 3, 4, 5]) == 2


def test_clear_win_is_better_and_direction_matters() -> None:
    rng = random.Random(1)
    slow = [1.0 + rng.gauss(0, 0.01) for _ in range(10)]
    fast = [0.8 + rng.gauss(0, 0.01) for _ in range(10)]
    cmp = compare(fast, slow, minimize=True)
    assert 0.2 < cmp.improvement < 0.3 and decide(cmp) == "better"
    assert decide(compare(fast, slow, minimize=False)) == "worse"


def test_overlapping_noise_is_noise() -> None:
    rng = random.Random(2)
    a = [1.0 + rng.gauss(0, 0.1) for _ in range(5)]
    b = [1.0 + rng.gauss(0, 0.1) for _ in range(5)]
    assert decide(compare(a, b, minimize=True)) == "noise"


def test_small_effect_below_threshold_is_noise() -> None:
    a = [1.0, 1.0, 1.0]
    b = [1.01, 1.01, 1.01]
    assert decide(compare(a, b, minimize=True), min_effect=0.02) == "noise"
