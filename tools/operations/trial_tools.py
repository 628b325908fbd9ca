"""Trial-level tools: ``show_trial`` (one trial in full) and ``compare_trials`` (two trials, statistically)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from tunesmith.knowledge.report import baseline_trial
from tunesmith.runners.fingerprint import fingerprint_id
from tunesmith.runners.stats import compare, decide
from tunesmith.runners.types import Trial

from .base import StoreReader, ToolInput, ToolOutput, config_diff, find_trial, min_effect, minimizes
from .studies import TrialBrief


class MeasurementView(BaseModel):
    """A trial's measurement: status, the summary of its samples, other metrics and the environment id."""

    status: str
    detail: str = ""
    median: float | None = None
    iqr: float | None = None
    n: int = 0
    low: float | None = Field(None, description="smallest sample")
    high: float | None = Field(None, description="largest sample")
    samples: list[float] | None = Field(None, description="raw samples, when include_samples is set")
    metrics: dict[str, float] = Field(default_factory=dict)
    timing_available: bool = True
    fingerprint_id: str | None = Field(None, description="short hash of the environment it was measured in")
    wall_s: float = 0.0


class EventView(BaseModel):
    """A step of the reasoning trail."""

    ts: str
    node: str
    message: str


class ShowTrialInput(ToolInput):
    """The trial to show: the study and the trial's number in it."""

    study: str = Field(min_length=1, description="the study's name (see list_studies)")
    trial: int = Field(ge=1, description="the trial's number in the study (1 is usually the default)")
    include_samples: bool = Field(False, description="also return the raw samples")


class ShowTrialOutput(ToolOutput):
    """One trial in full: what was tried, how it differs from the default, what was measured and judged."""

    study: str
    number: int
    origin: str
    rationale: str = ""
    state: str
    config: dict[str, Any]
    diff_vs_default: dict[str, dict[str, Any]] | None = Field(
        None, description="parameter -> {value, reference: the default's}; None when there is no default trial")
    measurement: MeasurementView | None = None
    verdict: str | None = None
    explanation: str = ""
    events: list[EventView] = Field(default_factory=list, description="trail entries that mention this trial")


def show_trial(store: StoreReader, args: ShowTrialInput) -> ShowTrialOutput:
    """Config, difference from the default, measurement, verdict, explanation and the events about it."""
    trial = find_trial(store, args.study, args.trial)
    base = baseline_trial(store.trials(args.study))
    mention = re.compile(rf"#{trial.number}\b")
    events = [EventView(ts=e["ts"], node=e["node"], message=e["message"]) for e in store.events(args.study)
              if e["data"].get("trial") == trial.number or mention.search(e["message"])]
    return ShowTrialOutput(
        study=trial.study, number=trial.number, origin=trial.candidate.origin, rationale=trial.candidate.rationale,
        state=trial.state.value, config=dict(trial.candidate.config),
        diff_vs_default=config_diff(trial.candidate.config, base.candidate.config) if base else None,
        measurement=_measurement(trial, args.include_samples), verdict=trial.verdict.value if trial.verdict else None,
        explanation=trial.explanation, events=events,
    )


def _measurement(trial: Trial, include_samples: bool) -> MeasurementView | None:
    m = trial.measurement
    if m is None:
        return None
    return MeasurementView(
        status=m.status.value, detail=m.detail, median=m.median, iqr=m.iqr, n=len(m.samples),
        low=min(m.samples) if m.samples else None, high=max(m.samples) if m.samples else None,
        samples=list(m.samples) if include_samples else None, metrics=dict(m.metrics),
        timing_available=m.timing_available, fingerprint_id=fingerprint_id(m.fingerprint) if m.fingerprint else None,
        wall_s=m.wall_s,
    )


class CompareTrialsInput(ToolInput):
    """Two trials of one study: ``a`` is judged against ``b``."""

    study: str = Field(min_length=1, description="the study's name (see list_studies)")
    a: int = Field(ge=1, description="number of the trial to judge (the challenger)")
    b: int = Field(ge=1, description="number of the trial to judge it against (e.g. 1, the default)")


class ComparisonView(BaseModel):
    """``a`` against ``b``: relative gain of the medians in the objective's direction, 95 % bootstrap interval."""

    improvement: float = Field(description="+0.10 = a is 10 % better than b")
    low: float
    high: float
    speedup: float = Field(description="1 + improvement")
    n_a: int
    n_b: int


class CompareTrialsOutput(ToolOutput):
    """Both trials, how their configs differ, and the code-decided comparison of their samples."""

    study: str
    metric: str
    direction: str
    a: TrialBrief
    b: TrialBrief
    config_diff: dict[str, dict[str, Any]] = Field(description="parameter -> {value: a's, reference: b's}")
    comparison: ComparisonView | None = Field(None, description="None when either trial has no timed samples")
    decision: str | None = Field(None, description="better / worse / noise at the study's min_effect")
    same_environment: bool | None = Field(None, description="whether both were measured in one environment")
    summary: str


def compare_trials(store: StoreReader, args: CompareTrialsInput) -> CompareTrialsOutput:
    """Config diff, medians and the bootstrap comparison of two trials' samples (the judge's statistics)."""
    info = store.study(args.study)
    a, b = find_trial(store, args.study, args.a), find_trial(store, args.study, args.b)
    objective = info.job.get("objective", {})
    out = CompareTrialsOutput(
        study=info.name, metric=str(objective.get("metric", "")), direction=str(objective.get("direction", "")),
        a=TrialBrief.of(a), b=TrialBrief.of(b), config_diff=config_diff(a.candidate.config, b.candidate.config),
        summary="",
    )
    ma, mb = a.measurement, b.measurement
    if ma and mb and ma.fingerprint and mb.fingerprint:
        out.same_environment = fingerprint_id(ma.fingerprint) == fingerprint_id(mb.fingerprint)
    if not (ma and mb and ma.ok and mb.ok and ma.samples and mb.samples):
        missing = [f"#{t.number}" for t in (a, b) if not (t.measurement and t.measurement.ok and t.measurement.samples)]
        out.summary = f"no comparison: trial {' and '.join(missing)} has no valid timed samples"
        return out
    cmp = compare(ma.samples, mb.samples, minimize=minimizes(info))
    if not cmp.defined:  # a median of 0 or below: no ratio to report (never "infx (nan-nan)")
        out.summary = f"no comparison: {cmp.reason}"
        return out
    out.comparison = ComparisonView(improvement=cmp.improvement, low=cmp.low, high=cmp.high, speedup=cmp.speedup,
                                    n_a=cmp.n_challenger, n_b=cmp.n_incumbent)
    out.decision = decide(cmp, min_effect=min_effect(info))
    out.summary = (f"trial #{a.number} vs #{b.number}: {cmp.improvement:+.1%} [{cmp.low:+.1%}, {cmp.high:+.1%}] "
                   f"({out.decision} at min_effect {min_effect(info):g})")
    if out.same_environment is False:
        out.summary += "; measured in different environments, so the numbers do not compare"
    return out
