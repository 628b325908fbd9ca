"""Study-level tools: ``list_studies`` and ``show_study`` (status, counts, best against the default)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from tunesmith.knowledge.report import fastest_summary
from tunesmith.runners.selection import Rules, study_result, verdict_records
from tunesmith.runners.types import Trial

from .base import StoreReader, ToolInput, ToolOutput


class TrialBrief(BaseModel):
    """A trial in one line: its number, origin, config, outcome and the judge's verdict."""

    number: int
    origin: str
    config: dict[str, Any]
    status: str | None = None  # the measurement's status; None while the trial runs
    median: float | None = None
    iqr: float | None = None
    n: int = 0
    verdict: str | None = None

    @classmethod
    def of(cls, t: Trial) -> TrialBrief:
        m = t.measurement
        return cls(number=t.number, origin=t.candidate.origin, config=dict(t.candidate.config),
                   status=m.status.value if m else None, median=m.median if m else None,
                   iqr=m.iqr if m else None, n=len(m.samples) if m else 0,
                   verdict=t.verdict.value if t.verdict else None)


class SpeedupInterval(BaseModel):
    """Speedup of one trial over another (>1 is better in either direction) with a 95 % bootstrap interval."""

    speedup: float
    low: float
    high: float
    best_median: float | None = None
    best_iqr: float | None = None
    baseline_median: float | None = None
    baseline_iqr: float | None = None
    n_best: int = 0
    n_baseline: int = 0


class StudySummary(BaseModel):
    """A row of ``list_studies``."""

    name: str
    target: str
    status: str
    trials: int = Field(description="trials run, re-measures included")
    created_at: str
    updated_at: str
    llm_mode: str = ""


class ListStudiesInput(ToolInput):
    """Which studies to list (all live ones by default)."""

    status: str | None = Field(None, description="only studies with this status: running, finished, archived")
    target: str | None = Field(None, description="only studies of this target, e.g. checkpoint_io")
    include_archived: bool = Field(False, description="also list studies archived by --restart")


class ListStudiesOutput(ToolOutput):
    """The matching studies, oldest first."""

    studies: list[StudySummary]


def list_studies(store: StoreReader, args: ListStudiesInput) -> ListStudiesOutput:
    """Every study in the store, filtered by status and target."""
    out = []
    for info in store.studies():
        if info.status == "archived" and not (args.include_archived or args.status == "archived"):
            continue
        if (args.status and info.status != args.status) or (args.target and info.target != args.target):
            continue
        out.append(StudySummary(name=info.name, target=info.target, status=info.status,
                                trials=len(store.trials(info.name)), created_at=info.created_at,
                                updated_at=info.updated_at, llm_mode=info.llm_mode))
    return ListStudiesOutput(studies=out)


class ShowStudyInput(ToolInput):
    """The study to show."""

    study: str = Field(min_length=1, description="the study's name (see list_studies)")


class ShowStudyOutput(ToolOutput):
    """A study at a glance: status, objective, trial counts, the default, the best and the speedup."""

    name: str
    target: str
    status: str
    objective: dict[str, Any]
    llm_mode: str = ""
    trials: int
    counts_by_status: dict[str, int] = Field(description="measurement status (or 'running') -> trials")
    counts_by_verdict: dict[str, int] = Field(description="judge's verdict (or 'unjudged') -> trials")
    baseline: TrialBrief | None = None
    best: TrialBrief | None = Field(None, description="the last confirmed win, else the default")
    speedup: SpeedupInterval | None = Field(None, description="best over the default; None if the default is best")
    fastest_unconfirmed: dict[str, Any] | None = Field(
        None, description="the fastest-looking trial the judge did not confirm, with its ratio to the default")
    summary: str = Field(description="one sentence saying what the numbers mean")
    stop_reason: str | None = None


def show_study(store: StoreReader, args: ShowStudyInput) -> ShowStudyOutput:
    """Status, trial counts and the best confirmed configuration against the default, with its interval."""
    info = store.study(args.study)
    trials = store.trials(args.study)
    events = store.events(args.study)
    result = study_result(trials, Rules.from_definition(info.job), verdict_records(events))
    best, baseline = result.best, result.baseline  # the report's definitions: runners/selection.py
    same = best is not None and baseline is not None and best.id == baseline.id
    summary = result.speedup.as_dict() if result.speedup is not None and result.speedup.available else None
    counts = Counter(t.measurement.status.value if t.measurement else t.state.value for t in trials)
    verdicts = Counter(t.verdict.value if t.verdict else "unjudged" for t in trials)
    finish = [e["message"] for e in events if e["node"] == "finish"]
    return ShowStudyOutput(
        name=info.name, target=info.target, status=info.status, objective=info.job.get("objective", {}),
        llm_mode=info.llm_mode, trials=len(trials), counts_by_status=dict(counts),
        counts_by_verdict=dict(verdicts),
        baseline=TrialBrief.of(baseline) if baseline else None, best=TrialBrief.of(best) if best else None,
        speedup=SpeedupInterval.model_validate(summary) if summary else None,
        fastest_unconfirmed=fastest_summary(result.fastest, result.fastest_speedup),
        summary=_sentence(best, baseline, summary, same),
        stop_reason=finish[-1].removeprefix("study stopped: ") if finish else None,
    )


def _sentence(best: Trial | None, baseline: Trial | None, summary: dict[str, Any] | None, same: bool) -> str:
    if baseline is None:
        return "the default configuration has not been measured yet"
    if same:
        return "no candidate beat the default by a confirmed margin: the default is the best confirmed configuration"
    if summary and best is not None:
        return (f"trial #{best.number} is {summary['speedup']:.3f}x the default (95 % interval "
                f"{summary['low']:.3f}-{summary['high']:.3f}), confirmed by the judge")
    return "no timed comparison with the default is available"
