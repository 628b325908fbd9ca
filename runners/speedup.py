"""The comparison every verdict and every printed speedup is: ``Speedup``, built by ``speedup_of``.

``Rules`` holds what verdicts depend on (direction, smallest effect worth claiming, repeats, whether wins
are re-measured). Pure: no I/O. ``runners/selection.py`` decides which samples are compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from .stats import CONFIDENCE, compare, decide, iqr, median

# The final re-measure takes the job's repeats, at least 8, per side: it is the number the user quotes, and
# with 4 a real 30 % win (10 % noise) fails it about one time in 40 (tests/test_false_wins.py).
FINAL_MIN_SAMPLES = 8


@dataclass(frozen=True)
class Rules:
    """What the verdicts and the reported speedup depend on, from the job's objective and [measure]."""

    minimize: bool = True
    min_effect: float = 0.02
    repeats: int = 3
    remeasure: bool = True

    @property
    def final_samples(self) -> int:
        return max(FINAL_MIN_SAMPLES, self.repeats)

    @classmethod
    def from_job(cls, job: Any) -> Rules:
        return cls(job.objective.minimize, job.objective.min_effect, job.measure.repeats, job.measure.remeasure)

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> Rules:
        """From a stored study definition (``Job.definition()``)."""
        obj, measure = definition.get("objective", {}), definition.get("measure", {})
        return cls(obj.get("direction", "minimize") == "minimize", float(obj.get("min_effect", 0.02)),
                   int(measure.get("repeats", 3)), bool(measure.get("remeasure", True)))


@dataclass(frozen=True)
class Speedup:
    """A comparison of a config (``trial``) with a reference (``reference``), as decided and as printed.

    ``speedup``/``low``/``high`` are ratios (>1 is better in either direction) with a 95 % bootstrap
    interval; None, with ``unavailable_reason``, when no ratio can be formed. ``basis`` says which
    samples were compared; ``decision`` is better / worse / noise at ``min_effect``.
    """

    basis: str
    speedup: float | None = None
    low: float | None = None
    high: float | None = None
    median: float | None = None
    iqr: float | None = None
    n: int = 0
    reference_median: float | None = None
    reference_iqr: float | None = None
    n_reference: int = 0
    decision: str = "noise"
    trial: int | None = None
    reference: int | None = None
    against_default: bool = False
    min_effect: float = 0.02
    confidence: float = CONFIDENCE
    seed: int = 0
    unavailable_reason: str = ""

    @property
    def available(self) -> bool:
        return self.speedup is not None

    @property
    def confirmed(self) -> bool:
        return self.decision == "better"

    @property
    def improvement(self) -> float | None:
        return None if self.speedup is None else self.speedup - 1.0

    def versus(self) -> str:
        return "the default" if self.against_default else f"trial #{self.reference}"

    def interval(self) -> str:
        """``1.234x (95 % interval 1.100-1.300)``, or why there is no number."""
        if self.speedup is None:
            return f"speedup unavailable ({self.unavailable_reason})"
        return f"{self.speedup:.3f}x ({self.confidence:.0%} interval {self.low:.3f}-{self.high:.3f})"

    def gain_text(self) -> str:
        """``+23.4% [+10.0%, +30.0%]`` as the judge writes it, or why there is no number."""
        if self.speedup is None:
            return self.unavailable_reason
        return f"{self.speedup - 1:+.1%} [{self.low - 1:+.1%}, {self.high - 1:+.1%}]"  # type: ignore[operator]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; also under the report's older names (best_median, baseline_median, n_best ...)."""
        data = asdict(self)
        data.update(best_median=self.median, best_iqr=self.iqr, n_best=self.n, baseline_median=self.reference_median,
                    baseline_iqr=self.reference_iqr, n_baseline=self.n_reference, confirmed=self.confirmed)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Speedup:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def speedup_of(samples: Sequence[float], reference: Sequence[float], *, minimize: bool, min_effect: float,
               basis: str, seed: int, trial: int | None = None, reference_trial: int | None = None,
               against_default: bool = False) -> Speedup:
    """Compare two sample sets (bootstrap of the ratio of medians) and decide: the one verdict computation."""
    cmp = compare(samples, reference, minimize=minimize, seed=seed)
    common: dict[str, Any] = dict(
        basis=basis, n=len(samples), n_reference=len(reference), decision=decide(cmp, min_effect=min_effect),
        trial=trial, reference=reference_trial, against_default=against_default, min_effect=min_effect,
        confidence=cmp.confidence, seed=seed,
        median=median(samples) if samples else None, iqr=iqr(samples) if samples else None,
        reference_median=median(reference) if reference else None, reference_iqr=iqr(reference) if reference else None)
    if not cmp.defined:
        return Speedup(unavailable_reason=cmp.reason, **common)
    return Speedup(speedup=cmp.speedup, low=1 + cmp.low, high=1 + cmp.high, **common)
