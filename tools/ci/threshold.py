"""Regression thresholds in pytest-benchmark's ``--benchmark-compare-fail`` syntax.

``FIELD:N%`` fails when FIELD got worse by more than N percent of the baseline's value (N a whole number
of one or two digits, as pytest-benchmark accepts); ``FIELD:X`` fails when it got worse by more than X in
the metric's own unit (``mean:0.001`` is one millisecond for a metric in seconds). FIELD is one of
``min``, ``max``, ``mean``, ``stddev``, ``median``, ``iqr``. pytest-benchmark only knows smaller-is-better
timings; for a metric to maximise (tokens/s, MB/s) "worse" is smaller, and ``min``/``max`` keep their
meaning as the smallest and largest sample.

The point check here is pytest-benchmark's rule; whether a regression is believed is decided with the
core's bootstrap comparison (``tools/ci/check.py``), for which ``relative_effect`` turns the threshold
into the smallest relative loss of the median it stands for.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from tunesmith.runners.errors import TunesmithError
from tunesmith.runners.stats import iqr, median

FIELDS = ("min", "max", "mean", "stddev", "median", "iqr")
SPREAD_FIELDS = ("stddev", "iqr")  # larger is worse whatever the metric's direction
# pytest-benchmark's own expression (src/pytest_benchmark/utils.py, parse_compare_fail)
_EXPR = re.compile(r"^(?P<field>min|max|mean|median|stddev|iqr):"
                   r"((?P<percentage>[0-9]?[0-9])%|(?P<difference>[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?))$")


class ThresholdError(TunesmithError):
    """A threshold that pytest-benchmark's syntax does not accept (exit 2)."""


@dataclass(frozen=True)
class Threshold:
    """How much worse a field may get before it is a regression: ``percent`` or ``difference``, one set."""

    field: str
    percent: int | None = None
    difference: float | None = None

    @property
    def text(self) -> str:
        return f"{self.field}:{self.percent}%" if self.percent is not None else f"{self.field}:{self.difference:g}"

    def loss(self, current: Sequence[float], baseline: Sequence[float], *, minimize: bool) -> float:
        """How much worse ``current`` is than ``baseline`` on the field: percent, or metric units."""
        now, before = field_value(current, self.field), field_value(baseline, self.field)
        worse = now - before if (minimize or self.field in SPREAD_FIELDS) else before - now
        if self.percent is not None:
            return float("inf") if not before else worse / abs(before) * 100
        return worse

    def exceeded(self, current: Sequence[float], baseline: Sequence[float], *, minimize: bool) -> bool:
        """pytest-benchmark's rule: fail when the loss is above the threshold."""
        limit = self.percent if self.percent is not None else self.difference
        return self.loss(current, baseline, minimize=minimize) > limit  # type: ignore[operator]

    def relative_effect(self, baseline: Sequence[float], *, minimize: bool) -> float:
        """The threshold as a relative loss of the median (a ``min_effect`` for the bootstrap's decision).

        The core's gain is ``before/now - 1`` when minimising and ``now/before - 1`` when maximising; a
        loss of p (a fraction of the baseline) is a gain of ``-p/(1+p)`` and ``-p`` respectively.
        """
        if self.percent is not None:
            p = self.percent / 100
        else:
            ref = field_value(baseline, self.field)
            p = self.difference / abs(ref) if ref else 0.0  # type: ignore[operator]
        return p / (1 + p) if minimize else min(p, 0.99)


def parse_threshold(text: str) -> Threshold:
    """``median:5%`` -> Threshold; anything pytest-benchmark would refuse is a one-line ``ThresholdError``."""
    m = _EXPR.match(text.strip())
    if not m:
        raise ThresholdError(f"threshold {text!r} is not in pytest-benchmark's syntax",
                             "write FIELD:N% or FIELD:X with FIELD one of min, max, mean, stddev, median, iqr "
                             "(e.g. median:5% or mean:0.001)")
    if m.group("percentage"):
        return Threshold(m.group("field"), percent=int(m.group("percentage")))
    return Threshold(m.group("field"), difference=float(m.group("difference")))


def field_value(samples: Sequence[float], field: str) -> float:
    """One summary of a sample set, named as pytest-benchmark names it."""
    if field == "min":
        return float(min(samples))
    if field == "max":
        return float(max(samples))
    if field == "mean":
        return float(statistics.fmean(samples))
    if field == "stddev":
        return float(statistics.stdev(samples)) if len(samples) > 1 else 0.0
    if field == "median":
        return median(samples)
    return iqr(samples)
