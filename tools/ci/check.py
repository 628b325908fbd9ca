"""``tune ci``'s decision: re-measure a baseline entry here and say whether it regressed.

One look runs the tuned config (and the job's default, interleaved A B A B, where the entry has one)
through the core's trial runner (``tools.trials.run_candidate``) with fresh samples. A look regresses
when the threshold's point check (pytest-benchmark's rule, ``threshold.py``) fails and the core's
bootstrap comparison of medians (``runners.speedup.speedup_of``, the judge's computation) calls the
current samples worse than the baseline's by more than the threshold (for ``stddev``/``iqr`` thresholds,
the point check alone). As the judge does with a win, a look that fails, or whose point estimate is
past the threshold, is re-measured once, and only the second look's fresh samples decide. A fingerprint that differs from the baseline's
is reported and not compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tunesmith.runners.selection import final_schedule, is_timed
from tunesmith.runners.speedup import Speedup, speedup_of
from tunesmith.runners.stats import iqr, median
from tunesmith.runners.types import Candidate, Status, Trial

from .baseline import Entry, without_nulls
from .threshold import SPREAD_FIELDS, Threshold

# exit codes of `tune ci`, and the outcome of one entry that maps to each
EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_CORRECTNESS, EXIT_INFRASTRUCTURE = 0, 1, 2, 3, 4
OUTCOME_EXIT = {"ok": EXIT_OK, "not compared": EXIT_OK, "regression": EXIT_REGRESSION,
                "correctness": EXIT_CORRECTNESS, "infrastructure": EXIT_INFRASTRUCTURE}
SEVERITY = ("correctness", "regression", "infrastructure", "not compared", "ok")  # first found decides the exit code

Measure = Callable[[dict[str, Any], int], tuple[list[Trial], list[Trial]]]  # (config, look) -> (tuned, default runs)


def fingerprint_diff(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints (``cpu: A -> B``); [] when they compare.

    Of the file system only its type counts: the mount point and options follow where the clone sits.
    """
    before, now = without_nulls(before), without_nulls(now)
    out = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if key == "filesystem":
            a, b = (a or {}).get("fstype"), (b or {}).get("fstype")
            key = "filesystem type"
        if a != b:
            out.append(f"{key}: {a if a is not None else 'none'} -> {b if b is not None else 'none'}")
    return out


@dataclass
class Look:
    """One measurement of a config against the baseline entry, and what it concluded."""

    look: int
    config: dict[str, Any]
    samples: list[float] = field(default_factory=list)
    default_samples: list[float] = field(default_factory=list)
    trials: list[int] = field(default_factory=list)
    failure: str = ""  # "" or a measurement status (correctness, runtime, infrastructure ...)
    detail: str = ""
    loss: float | None = None  # how much worse on the threshold's field (percent or metric units)
    exceeded: bool = False
    comparison: Speedup | None = None  # current samples against the baseline's (the bootstrap)
    now_vs_default: Speedup | None = None  # the config against the default, both measured now, interleaved
    regression: bool = False
    basis: str = ""

    @property
    def median(self) -> float | None:
        return median(self.samples) if self.samples else None

    @property
    def iqr(self) -> float | None:
        return iqr(self.samples) if self.samples else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(median=self.median, iqr=self.iqr,
                    comparison=self.comparison.as_dict() if self.comparison else None,
                    now_vs_default=self.now_vs_default.as_dict() if self.now_vs_default else None)
        return data


@dataclass
class EntryResult:
    """What ``tune ci`` concluded about one baseline entry (``outcome`` maps to the exit code)."""

    entry: Entry
    threshold: Threshold
    outcome: str = "ok"
    summary: str = ""
    looks: list[Look] = field(default_factory=list)
    fingerprint_diff: list[str] = field(default_factory=list)
    baseline_vs_default: Speedup | None = None
    retune: dict[str, Any] | None = None  # the bounded re-tune, when one ran (set by the front end)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.entry.name, "job": self.entry.job, "metric": self.entry.metric,
                "direction": self.entry.direction, "config": self.entry.config, "threshold": self.threshold.text,
                "outcome": self.outcome, "summary": self.summary,
                "baseline": self.entry.performance.model_dump(), "baseline_basis": self.entry.basis,
                "baseline_vs_default": self.baseline_vs_default.as_dict() if self.baseline_vs_default else None,
                "fingerprint_diff": self.fingerprint_diff, "looks": [lk.as_dict() for lk in self.looks],
                "retune": self.retune}


def interleaved_runs(run: Callable[[Candidate, int], Trial], config: dict[str, Any], default: dict[str, Any] | None,
                     samples: int, look: int) -> tuple[list[Trial], list[Trial]]:
    """Run ``config`` (and ``default`` before it in each round) ``samples`` times each, in A B rounds.

    ``run(candidate, repeats)`` runs and stores one trial. Stops at the first failed run.
    """
    tuned: list[Trial] = []
    base: list[Trial] = []
    sides = ([("default", default, base)] if default is not None and default != config else []) + [
        ("tuned", config, tuned)]
    for k in final_schedule(samples):
        for label, cfg, runs in sides:
            trial = run(Candidate(config=cfg, origin="user", rationale=f"ci check, look {look}: the {label} config"), k)
            runs.append(trial)
            if not is_timed(trial):
                return tuned, base
    return tuned, base


def judge_look(entry: Entry, threshold: Threshold, config: dict[str, Any], tuned: list[Trial],
               default: list[Trial], look: int, *, min_effect: float, basis: str = "") -> Look:
    """A look's verdict from its runs: a failure status, or the threshold and the bootstrap."""
    out = Look(look=look, config=config, trials=[t.number for t in (*default, *tuned)],
               basis=basis or f"look {look}: fresh samples measured now vs the baseline file's")
    failed = next((t for t in (*tuned, *default) if not is_timed(t)), None)
    if failed is not None or not tuned:
        m = failed.measurement if failed is not None else None
        out.failure = m.status.value if m is not None else Status.INFRASTRUCTURE.value
        out.detail = (f"trial #{failed.number}: {m.detail}" if m is not None and failed is not None
                      else "no run finished")
        return out
    out.samples = [x for t in tuned for x in t.measurement.samples]  # type: ignore[union-attr]
    out.default_samples = [x for t in default for x in t.measurement.samples]  # type: ignore[union-attr]
    return decide(out, entry, threshold, min_effect=min_effect)


def decide(look: Look, entry: Entry, threshold: Threshold, *, min_effect: float) -> Look:
    """Fill in the look's comparison against the baseline and its regression flag (samples already set)."""
    ref, minimize = entry.performance.samples, entry.minimize
    effect = threshold.relative_effect(ref, minimize=minimize)
    look.loss = threshold.loss(look.samples, ref, minimize=minimize)
    look.exceeded = threshold.exceeded(look.samples, ref, minimize=minimize)
    look.comparison = speedup_of(look.samples, ref, minimize=minimize, min_effect=effect, basis=look.basis,
                                 seed=look.look)
    significant = threshold.field in SPREAD_FIELDS or look.comparison.decision == "worse"
    look.regression = look.exceeded and significant
    if look.default_samples:
        look.now_vs_default = speedup_of(look.samples, look.default_samples, minimize=minimize, min_effect=min_effect,
                                         basis=f"look {look.look}: against the default, interleaved, measured now",
                                         seed=look.look, against_default=True)
    return look


def check_entry(entry: Entry, threshold: Threshold, measure: Measure, *, current_fingerprint: dict[str, Any],
                min_effect: float, config: dict[str, Any] | None = None, first: Look | None = None) -> EntryResult:
    """Check one entry: fingerprint, then a look, re-measured once before a regression or failure stands.

    ``measure(config, look)`` runs a look; ``first`` is a look already taken (a re-tune's final re-measure).
    """
    result = EntryResult(entry=entry, threshold=threshold)
    if entry.default_performance is not None:
        result.baseline_vs_default = speedup_of(
            entry.performance.samples, entry.default_performance.samples, minimize=entry.minimize,
            min_effect=min_effect, basis="the baseline file's samples", seed=0, against_default=True)
    result.fingerprint_diff = fingerprint_diff(entry.fingerprint, current_fingerprint)
    if result.fingerprint_diff:
        result.outcome = "not compared"
        result.summary = ("not compared: this machine's environment differs from the baseline's ("
                          + "; ".join(result.fingerprint_diff) + "); write a baseline here to compare")
        return result
    config = entry.config if config is None else config
    look = first or _take(entry, threshold, measure, config, 1, min_effect)
    result.looks.append(look)
    if look.failure or look.exceeded:  # re-measure once before failing: the fresh samples alone decide
        look = _take(entry, threshold, measure, config, look.look + 1, min_effect)
        result.looks.append(look)
    result.outcome, result.summary = _conclusion(look, threshold, entry, len(result.looks))
    return result


def _take(entry: Entry, threshold: Threshold, measure: Measure, config: dict[str, Any], n: int,
          min_effect: float) -> Look:
    tuned, default = measure(config, n)
    return judge_look(entry, threshold, config, tuned, default, n, min_effect=min_effect)


def change_text(loss: float | None, threshold: Threshold, metric: str) -> str:
    """``12.3% worse`` / ``0.004 seconds better`` on the threshold's field."""
    if loss is None:
        return "–"
    word = "worse" if loss > 0 else "better"
    amount = f"{abs(loss):.1f}%" if threshold.percent is not None else f"{abs(loss):.4g} {metric}"
    return f"{threshold.field} {amount} {word}"


def _conclusion(look: Look, threshold: Threshold, entry: Entry, looks: int) -> tuple[str, str]:
    again = " (re-measured once: both looks agree)" if looks > 1 else ""
    if look.failure:
        outcome = {"correctness": "correctness", "infrastructure": "infrastructure"}.get(look.failure, "regression")
        return outcome, f"the config fails here ({look.failure}: {look.detail}){again}"
    sp = look.comparison
    assert sp is not None
    numbers = (f"{change_text(look.loss, threshold, entry.metric)} than the baseline (threshold {threshold.text}); "
               f"median {sp.median:.4g} vs {sp.reference_median:.4g} {entry.metric}, speedup {sp.interval()}")
    if look.regression:
        return "regression", f"regression: {numbers}{again}"
    if look.exceeded:
        return "ok", (f"ok, inconclusive: {numbers}; past the threshold on its point estimate, but the interval "
                      "does not clear it on fresh samples (noise, not a proven regression)")
    if looks > 1:
        return "ok", f"ok after a re-measure: {numbers} (the first look's alarm did not repeat)"
    return "ok", f"ok: {numbers}"


def exit_code(results: list[EntryResult]) -> int:
    """The worst outcome decides: correctness 3, regression 1, infrastructure 4, else 0."""
    found = {r.outcome for r in results}
    worst = next((o for o in SEVERITY if o in found), "ok")
    return OUTCOME_EXIT[worst]
