"""Confirm node: the study's final answer, re-measured against the default.

When the study stops and the best confirmed config is not the default, both run again, interleaved
(default, best, default, best ...), with fresh samples, and are compared by the judge's own computation
(``selection.final_speedup``); that comparison is the speedup the study reports, confirmed or not.
The runs do not spend the trial budget. The store is the source of truth: runs already stored are
kept, so a final re-measure killed half-way resumes where it stopped and never repeats a finished run.
"""

from __future__ import annotations

from typing import Any

from tunesmith.agents.nodes.execute import executor_of, summarize
from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners import selection
from tunesmith.runners.selection import Rules, Speedup
from tunesmith.tools.trials import run_candidate


def confirm(state: StudyState, session: TuningSession) -> dict[str, Any]:  # noqa: ARG001 - graph signature
    rules = Rules.from_job(session.job)
    trials = session.store.trials(session.study)
    default, best = selection.baseline_trial(trials), selection.best_trial(trials)
    if default is None or best is None or best.id == default.id:
        return {}
    if not (selection.is_timed(default) and selection.is_timed(best)):
        return {}
    if not rules.remeasure:
        session.emit("confirm", "no final re-measure: re-measuring is off ([measure] remeasure = false); "
                     "the reported speedup compares first runs")
        return {}
    plan = selection.final_plan(trials, best, default, rules.final_samples)
    if plan:
        session.emit("confirm", f"final re-measure: the default (trial #{default.number}) and the best config "
                     f"(trial #{best.number}) run again, interleaved, {rules.final_samples} fresh samples each "
                     f"({len(plan)} runs left)")
    for cand, samples in plan:
        reason = session.budget.exhausted(count_trials=False)
        if reason:
            session.emit("confirm", f"final re-measure stopped: {reason}; the reported speedup is the interim one")
            return {}
        side = "the default" if cand.key == default.candidate.key else f"trial #{best.number}"
        session.emit("run", f"running {side} again (final re-measure, {samples} samples)", config=cand.config,
                     origin="final")
        trial = run_candidate(session.store, session.study, session.target, executor_of(session).comparison_runner(), cand,
                              scratch_root=session.scratch_root, repeats=samples,
                              ledger=getattr(session, "ledger", None))
        session.emit("run", f"{summarize(trial, session.job.objective.metric)} (final re-measure of {side})",
                     trial=trial.number,
                     status=trial.measurement.status.value if trial.measurement else None)
    final = selection.final_speedup(session.store.trials(session.study), rules)
    if final is not None:
        session.emit("confirm", verdict_line(final, best.number), trial=best.number, final=True,
                     comparison=final.as_dict())
    return {}


def verdict_line(final: Speedup, number: int) -> str:
    """What the final re-measure concluded, in one line."""
    if final.confirmed:
        return f"final re-measure confirms trial #{number}: {final.interval()} over the default ({final.basis})"
    return (f"final re-measure does not confirm trial #{number}: {final.interval()} over the default "
            f"({final.basis}); it stays the best config found, with that caveat")
