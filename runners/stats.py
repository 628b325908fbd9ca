"""Measurement statistics: medians, spreads and a code-decided comparison of two sample sets."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def quantile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    if len(s) == 1:
        return float(s[0])
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def iqr(xs: Sequence[float]) -> float:
    return quantile(xs, 0.75) - quantile(xs, 0.25)


def relative_spread(xs: Sequence[float]) -> float:
    """IQR divided by the median (0 for a single sample)."""
    m = median(xs)
    return iqr(xs) / abs(m) if m else 0.0


@dataclass(frozen=True)
class Comparison:
    """How a challenger compares with an incumbent on a metric.

    ``improvement`` is the relative gain of the challenger's median in the objective's direction
    (+0.10 = 10 % better); ``low``/``high`` bound it with a bootstrap confidence interval.
    """

    improvement: float
    low: float
    high: float
    n_challenger: int
    n_incumbent: int

    @property
    def speedup(self) -> float:
        return 1.0 + self.improvement


def _gain(challenger: float, incumbent: float, minimize: bool) -> float:
    if minimize:
        return incumbent / challenger - 1.0 if challenger > 0 else float("inf")
    return challenger / incumbent - 1.0 if incumbent > 0 else float("inf")


def compare(
    challenger: Sequence[float],
    incumbent: Sequence[float],
    *,
    minimize: bool,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Bootstrap the ratio of medians; deterministic for a given seed."""
    point = _gain(median(challenger), median(incumbent), minimize)
    rng = random.Random(seed)
    gains = []
    for _ in range(resamples):
        c = [rng.choice(challenger) for _ in challenger]
        i = [rng.choice(incumbent) for _ in incumbent]
        gains.append(_gain(median(c), median(i), minimize))
    alpha = (1 - confidence) / 2
    return Comparison(point, quantile(gains, alpha), quantile(gains, 1 - alpha), len(challenger), len(incumbent))


def decide(cmp: Comparison, *, min_effect: float = 0.02) -> str:
    """'better', 'worse' or 'noise': a side wins only if its whole interval clears ``min_effect``."""
    if cmp.low > min_effect:
        return "better"
    if cmp.high < -min_effect:
        return "worse"
    return "noise"
