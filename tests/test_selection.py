"""runners/selection: the baseline, the incumbent, the best trial and the speedup, defined once.

The pure functions first, on hand-built trials; then the agent loop on the synthetic target: the
number printed is the number the verdict used, the final re-measure is the study's answer and
survives a kill, and a kill during the default's run does not lose the comparison with the default.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.synthetic import SyntheticTarget
from tunesmith.knowledge.report import build_report, describe_speedup, render_markdown
from tunesmith.runners import selection
from tunesmith.runners.selection import Rules, Speedup
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState, Verdict
from tunesmith.tools.plugins import TARGETS

TARGETS.register("synthetic", SyntheticTarget)
RULES = Rules(minimize=True, min_effect=0.02, repeats=4)


def trial(number: int, origin: str, samples: list[float], verdict: Verdict | None = None, *, config: dict | None = None,
          status: Status = Status.OK, interrupted: bool = False, rationale: str = "", detail: str = "") -> Trial:
    return Trial(id=number, study="s", number=number, state=TrialState.DONE, verdict=verdict, interrupted=interrupted,
                 candidate=Candidate(config=config if config is not None else {"x": number}, origin=origin,  # type: ignore[arg-type]
                                     rationale=rationale),
                 measurement=Measurement(status=status, samples=samples, detail=detail))


def test_baseline_is_the_defaults_finished_run_not_an_interrupted_one() -> None:
    killed = trial(1, "baseline", [], config={"x": 0}, status=Status.INFRASTRUCTURE, interrupted=True,
                   detail="interrupted: the process running it was killed")
    again = trial(2, "baseline", [1.0, 1.0, 1.01], Verdict.BASELINE, config={"x": 0})
    assert selection.baseline_trial([killed, again]) is again
    legacy = killed.model_copy(update={"interrupted": False})  # rows from before the store's column
    assert selection.baseline_trial([legacy, again]) is again


def test_incumbent_and_best_ignore_re_measures_final_runs_and_interrupted_trials() -> None:
    base = trial(1, "baseline", [1.0] * 3, Verdict.BASELINE)
    win = trial(2, "planner", [0.5] * 3, Verdict.BETTER)
    again = trial(3, "remeasure", [0.5] * 3, Verdict.BETTER, config=win.candidate.config)
    final = trial(4, "final", [0.1] * 3, Verdict.BETTER)
    cut = trial(5, "planner", [0.2] * 3, Verdict.BETTER, interrupted=True)
    everything = [base, win, again, final, cut]
    assert selection.incumbent_trial(everything) is win and selection.best_trial(everything) is win
    assert selection.best_trial([base]) is base
    assert selection.best_measured(everything, minimize=True) is win
    assert selection.best_measured(everything, minimize=False) is base


def test_a_negative_metric_gives_a_reason_not_inf_or_nan() -> None:
    sp = selection.speedup_of([-1.0, -1.1, -0.9], [1.0, 1.1, 0.9], minimize=True, min_effect=0.02, basis="b", seed=0)
    assert not sp.available and sp.decision == "noise"
    assert sp.unavailable_reason == "metric median is 0 or negative; speedup undefined"
    for text in (sp.interval(), describe_speedup(sp, final=True, metric="score")):
        assert "inf" not in text and "nan" not in text and "0 or negative" in text
    zero = selection.speedup_of([0.0, 0.0], [1.0, 1.0], minimize=False, min_effect=0.02, basis="b", seed=0)
    assert not zero.available and "speedup undefined" in zero.unavailable_reason


def test_speedup_round_trips_through_json_with_the_reports_older_names() -> None:
    sp = selection.speedup_of([0.8, 0.81, 0.79, 0.8], [1.0, 1.02, 0.98, 1.0], minimize=True, min_effect=0.02,
                              basis="fresh re-measure", seed=3, trial=5, reference_trial=1, against_default=True)
    data = sp.as_dict()
    assert Speedup.from_dict(data) == sp
    assert data["best_median"] == sp.median and data["n_baseline"] == 4 and data["confirmed"] is True
    assert sp.low <= sp.speedup <= sp.high and math.isclose(sp.speedup, 1.0 / 0.8)


def test_the_reported_speedup_is_the_verdicts_recorded_comparison() -> None:
    base = trial(1, "baseline", [1.0, 1.02, 0.98], Verdict.BASELINE)
    win = trial(2, "planner", [0.7, 0.71, 0.69], Verdict.BETTER)
    recorded = Speedup(basis="fresh re-measure, back to back (trials #4 vs #3)", speedup=1.4, low=1.3, high=1.5,
                       decision="better", trial=2, reference=1, against_default=True)
    events = [{"node": "judge", "message": "...", "data": {"trial": 2, "comparison": recorded.as_dict()}}]
    result = selection.study_result([base, win], RULES, selection.verdict_records(events))
    assert result.speedup == recorded and not result.final  # printed as decided, not recomputed
    interim = selection.study_result([base, win], RULES)  # no record: said to be a first-run comparison
    assert interim.speedup is not None and interim.speedup.basis.startswith("first run vs the default")


def final_study(best_final: list[list[float]], default_final: list[list[float]], *,
                failed_at: int | None = None) -> tuple[list[Trial], Trial, Trial]:
    base = trial(1, "baseline", [1.0, 1.02, 0.98, 1.0], Verdict.BASELINE, config={"x": 0})
    best = trial(2, "planner", [0.7, 0.71, 0.69, 0.7], Verdict.BETTER, config={"x": 1})
    trials = [base, best]
    for (cand, _), samples in zip(selection.final_plan(trials, best, base, RULES.final_samples),
                                  [s for pair in zip(default_final, best_final, strict=True) for s in pair], strict=True):
        number = len(trials) + 1
        status = Status.RUNTIME if number == failed_at else Status.OK
        trials.append(trial(number, "final", samples, config=cand.config, rationale=cand.rationale, status=status,
                            detail="crashed" if status != Status.OK else ""))
    return trials, best, base


def test_the_final_re_measure_is_the_answer_once_complete() -> None:
    trials, best, base = final_study([[0.7, 0.71]] * 4, [[1.0, 1.01]] * 4)
    result = selection.study_result(trials, RULES)
    assert result.final and result.speedup.confirmed and result.speedup.n == 8 == result.speedup.n_reference
    assert result.speedup.basis == "final re-measure, interleaved (trials #3-#10)"
    partial = selection.study_result(trials[:7], RULES)  # killed half-way: not the answer yet
    assert not partial.final
    left = selection.final_plan(trials[:7], best, base, RULES.final_samples)
    assert [c.key for c, _ in left] == [best.candidate.key, base.candidate.key, best.candidate.key]  # A B order kept


def test_a_final_re_measure_that_does_not_confirm_is_said_so() -> None:
    trials, _, _ = final_study([[1.0, 0.99]] * 4, [[1.0, 1.01]] * 4)
    result = selection.study_result(trials, RULES)
    assert result.final and not result.speedup.confirmed and result.best.number == 2
    assert describe_speedup(result.speedup, True, "seconds").startswith("not confirmed at the final re-measure")
    assert describe_speedup(result.speedup, True, "seconds", short=True).endswith("not confirmed at the final re-measure")
    failed, _, _ = final_study([[0.7, 0.71]] * 4, [[1.0, 1.01]] * 4, failed_at=6)
    sp = selection.study_result(failed, RULES).speedup
    assert not sp.available and "trial #6 failed at the final re-measure (runtime: crashed)" in sp.unavailable_reason


# -- the agent loop --------------------------------------------------------------------------------------------


def make_job(trials: int = 6, **extra):
    from tunesmith.runners.job import parse_job

    data = {"name": "syn", "target": "synthetic", "budget": {"trials": trials}, "measure": {"repeats": 4},
            "strategy": {"name": "planner"}, "llm": {"mode": "off"}}
    data.update(extra)
    return parse_job(data)


def test_the_printed_numbers_are_the_ones_each_verdict_used(tmp_path: Path) -> None:
    from tunesmith.agents.study import drive, open_session

    with open_session(make_job(), tmp_path) as session:
        outcome = drive(session)
        report = build_report(session.store, "syn")
        records = selection.verdict_records(session.store.events("syn"))
    judged = [t for t in outcome.trials if selection.is_first_run(t) and t.verdict not in (None, Verdict.BASELINE,
                                                                                           Verdict.INVALID)]
    assert judged
    for t in judged:  # the explanation stored with the verdict quotes the recorded comparison
        assert records[t.number].gain_text() in t.explanation
    assert outcome.result.final and report["final"] and report["speedup"] == outcome.result.speedup.as_dict()
    finals = [t for t in outcome.trials if t.candidate.origin == "final"]
    assert len(finals) == 8 and sum(len(t.measurement.samples) for t in finals) == 16  # 8 fresh samples a side
    assert report["speedup_line"].startswith("speedup over the default:") and "final re-measure" in report["speedup_line"]
    assert "Speedup over the default" in render_markdown(report)
    wins = [r for r in report["reflections"] if "changed seconds by" in r["insight"]]
    assert wins and all(any(records[n].gain_text() in r["insight"] for n in r["evidence"] if n in records)
                        for r in wins)  # the lesson quotes its verdict's numbers


class KilledInFinal(SyntheticTarget):
    """Ctrl-C during the third run of the final re-measure."""

    finals = 0

    def evaluate(self, candidate, ctx):  # noqa: ANN001, ANN201
        if candidate.origin == "final":
            KilledInFinal.finals += 1
            if KilledInFinal.finals == 3:
                raise KeyboardInterrupt
        return super().evaluate(candidate, ctx)


def test_a_killed_final_re_measure_resumes_without_repeating_finished_runs(tmp_path: Path) -> None:
    from tunesmith.agents.study import drive, open_session

    TARGETS.register("synthetic_killed", KilledInFinal)
    job = make_job(target="synthetic_killed")
    with pytest.raises(KeyboardInterrupt), open_session(job, tmp_path) as session:
        drive(session)
    with open_session(job, tmp_path) as session:
        outcome = drive(session)
    finals = [t for t in outcome.trials if t.candidate.origin == "final"]
    done = [t for t in finals if not t.interrupted]
    assert len(finals) == 9 and len(done) == 8  # the killed run again, the two finished ones kept
    assert [t.candidate.key for t in done] == [outcome.baseline.candidate.key, outcome.best.candidate.key] * 4
    assert outcome.result.final and outcome.result.speedup.confirmed
    assert sum(1 for t in outcome.trials if selection.is_first_run(t)) == 6  # the final runs spend no budget


def test_a_kill_during_the_default_keeps_the_comparison_with_the_default(tmp_path: Path) -> None:
    from tunesmith.agents.study import drive, open_session
    from tunesmith.knowledge.study_store import StudyStore

    job = make_job(trials=5)
    store = StudyStore(tmp_path / "tunesmith.db")
    store.open_study(job)
    store.start_trial("syn", Candidate(config={"threads": 1, "chunk": 1, "mode": "a"}, origin="baseline"))
    store.close()  # left running: recovered as interrupted on the next open
    with open_session(job, tmp_path) as session:
        outcome = drive(session)
        report = build_report(session.store, "syn")
    assert outcome.trials[0].interrupted and outcome.baseline.number != 1 and outcome.baseline.measurement.ok
    assert report["baseline"]["number"] == outcome.baseline.number and report["speedup"]["reference"] == outcome.baseline.number


def test_remeasure_off_runs_no_final_and_says_what_it_compared(tmp_path: Path) -> None:
    from tunesmith.agents.study import drive, open_session

    with open_session(make_job(measure={"repeats": 4, "remeasure": False}), tmp_path) as session:
        outcome = drive(session)
    assert not any(t.candidate.origin in ("final", "remeasure") for t in outcome.trials)
    sp = outcome.result.speedup
    assert sp is not None and not outcome.result.final and sp.against_default and sp.speedup > 1
