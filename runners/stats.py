"""Measurement statistics: medians, spreads and a code-decided comparison of two sample sets.

``compare`` bootstraps the ratio of medians (deterministic for a seed); ``decide`` turns its interval
into better / worse / noise. A ratio is only defined for positive, finite samples: otherwise the
comparison says why it is undefined and ``decide`` calls it noise (never a win).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

CONFIDENCE = 0.95  # every interval the judge decides on and the user reads
RESAMPLES = 2000


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


@dataclass(frozen=True)
class Comparison:
    """How a challenger compares with an incumbent on a metric.

    ``improvement`` is the relative gain of the challenger's median in the objective's direction
    (+0.10 = 10 % better); ``low``/``high`` bound it with a bootstrap confidence interval. When the ratio
    is undefined (a median at or below zero, a sample that is not finite) the three are NaN and
    ``reason`` says why.
    """

    improvement: float
    low: float
    high: float
    n_challenger: int
    n_incumbent: int
    confidence: float = CONFIDENCE
    seed: int = 0
    reason: str = ""

    @property
    def speedup(self) -> float:
        return 1.0 + self.improvement

    @property
    def defined(self) -> bool:
        return not self.reason


def undefined_reason(challenger: Sequence[float], incumbent: Sequence[float]) -> str:
    """Why a ratio of medians cannot be formed from these samples ("" when it can)."""
    if not challenger or not incumbent:
        return "no timed samples on one side; speedup undefined"
    if not all(math.isfinite(x) for x in (*challenger, *incumbent)):
        return "a sample is not a finite number; speedup undefined"
    if median(challenger) <= 0 or median(incumbent) <= 0:
        return "metric median is 0 or negative; speedup undefined"
    if min(challenger) <= 0 or min(incumbent) <= 0:
        return "metric has samples at or below 0; a ratio interval is undefined"
    return ""


@lru_cache(maxsize=256)  # about 32 KB each
def _middle_ranks(seed: int, n_c: int, n_i: int, resamples: int) -> tuple[Any, Any, Any, Any]:
    """For each bootstrap resample of each side: the ranks (in the sorted samples) whose mean is its median.

    They depend only on the seed and the sample counts, not on the values, so they are drawn once and
    reused: the same seed and samples always give the same interval, and a long study stays fast.
    """
    import numpy as np  # here, not at import: every command line start loads this module

    rng = np.random.default_rng(seed)
    out = []
    for n in (n_c, n_i):
        ranks = np.sort(rng.integers(0, n, size=(resamples, n)), axis=1)
        out += [ranks[:, (n - 1) // 2].astype(np.int32), ranks[:, n // 2].astype(np.int32)]
    return tuple(out)  # type: ignore[return-value]


def _interpolated(sorted_xs: Any, q: float) -> float:
    """``quantile`` on an already sorted numpy array (linear interpolation, as numpy's default)."""
    pos = q * (len(sorted_xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return float(sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo))


def _gain(challenger: Any, incumbent: Any, minimize: bool) -> Any:  # floats or numpy arrays
    return incumbent / challenger - 1.0 if minimize else challenger / incumbent - 1.0


def compare(
    challenger: Sequence[float],
    incumbent: Sequence[float],
    *,
    minimize: bool,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Bootstrap the ratio of medians; deterministic for a given seed (and the same samples)."""
    n_c, n_i = len(challenger), len(incumbent)
    reason = undefined_reason(challenger, incumbent)
    if reason:
        nan = float("nan")
        return Comparison(nan, nan, nan, n_c, n_i, confidence, seed, reason)
    import numpy as np

    point = float(_gain(median(challenger), median(incumbent), minimize))
    lo_c, hi_c, lo_i, hi_i = _middle_ranks(seed, n_c, n_i, resamples)
    c, i = np.sort(np.asarray(challenger, dtype=float)), np.sort(np.asarray(incumbent, dtype=float))
    gains = np.sort(_gain(0.5 * (c[lo_c] + c[hi_c]), 0.5 * (i[lo_i] + i[hi_i]), minimize))
    alpha = (1 - confidence) / 2
    low, high = _interpolated(gains, alpha), _interpolated(gains, 1 - alpha)
    return Comparison(point, low, high, n_c, n_i, confidence, seed)


def decide(cmp: Comparison, *, min_effect: float = 0.02) -> str:
    """'better', 'worse' or 'noise': a side wins only if its whole interval clears ``min_effect``.

    An undefined comparison is 'noise': nothing is claimed from numbers that cannot be divided.
    """
    if not cmp.defined:
        return "noise"
    if cmp.low > min_effect:
        return "better"
    if cmp.high < -min_effect:
        return "worse"
    return "noise"
