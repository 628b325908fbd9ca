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


def test_compare_is_deterministic_for_a_seed_and_brackets_its_point() -> None:
    rng = random.Random(3)
    a = [0.8 + rng.gauss(0, 0.05) for _ in range(6)]
    b = [1.0 + rng.gauss(0, 0.05) for _ in range(4)]
    first, again = compare(a, b, minimize=True, seed=7), compare(a, b, minimize=True, seed=7)
    assert first == again and first.low <= first.improvement <= first.high
    assert compare(a, b, minimize=True, seed=8) != first  # another seed, another bootstrap
    assert first.n_challenger == 6 and first.n_incumbent == 4 and first.confidence == 0.95


def test_maximize_reads_the_ratio_the_other_way() -> None:
    fast, slow = [2.0, 2.02, 1.98], [1.0, 1.01, 0.99]
    assert abs(compare(fast, slow, minimize=False).improvement - 1.0) < 1e-9
    assert abs(compare(slow, fast, minimize=True).improvement - 1.0) < 1e-9


def test_a_ratio_of_non_positive_or_non_finite_samples_is_undefined_and_never_a_win() -> None:
    cases = {
        "metric median is 0 or negative; speedup undefined": ([-1.0, -2.0, -1.5], [1.0, 1.0, 1.0]),
        "a sample is not a finite number; speedup undefined": ([1.0, float("inf")], [1.0, 1.0]),
        "metric has samples at or below 0; a ratio interval is undefined": ([0.0, 1.0, 1.0], [2.0, 2.0, 2.0]),
    }
    for reason, (a, b) in cases.items():
        cmp = compare(a, b, minimize=True)
        assert cmp.reason == reason and not cmp.defined and decide(cmp) == "noise"
