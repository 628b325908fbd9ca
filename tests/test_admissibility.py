"""One admissibility check for strategies and coder; inadmissible proposals never spend the trial budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.synthetic import SyntheticTarget
from tunesmith.agents.budget import BudgetTracker, counted_trials, rejected_before_running
from tunesmith.agents.nodes.planner import REJECTION_LIMIT
from tunesmith.agents.strategies.base import Strategy
from tunesmith.agents.study import drive, open_session
from tunesmith.runners.admissibility import admissible, feasibility
from tunesmith.runners.base import Prediction
from tunesmith.runners.job import Budget, parse_job
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState
from tunesmith.tools.plugins import TARGETS


class HalfRejected(SyntheticTarget):
    """The synthetic target, whose own check refuses threads 2 and 8 (half the threads values) and whose
    prediction refuses chunk 16 with threads 4."""

    name = "half_rejected"

    def check(self, candidate: Candidate) -> list[str]:
        threads = candidate.config["threads"]
        return [f"threads={threads} is not supported here"] if threads in (2, 8) else []

    def predict(self, candidate: Candidate) -> Prediction | None:
        cfg = candidate.config
        if cfg["threads"] == 4 and cfg["chunk"] == 16:
            return Prediction(feasible=False, reason="needs more memory than the machine has")
        return Prediction(feasible=True)


TARGETS.register("half_rejected", HalfRejected)


def make_job(trials: int = 5, strategy: str = "grid", **extra: Any):
    data = {"name": "adm", "target": "half_rejected", "budget": {"trials": trials},
            "measure": {"repeats": 3, "remeasure": False}, "strategy": {"name": strategy}, "llm": {"mode": "off"},
            "workload": {"fail_mode": "none"}}
    data.update(extra)
    return parse_job(data)


def target(**extra: Any) -> HalfRejected:
    return HalfRejected(make_job(**extra))


# -- the check itself ------------------------------------------------------------------------------------
def test_reasons_come_from_ranges_constraints_check_and_prediction() -> None:
    t = target()
    space = SearchSpace(params=t.space().params, constraints=("not (mode == 'b' and chunk == 1)",))
    ok = admissible({"threads": 1}, space, t)
    assert ok and ok.reasons == () and ok.why == ""
    assert ok.candidate.config == {"threads": 1, "chunk": 1, "mode": "a"}  # completed with defaults
    assert ok.candidate.key == Candidate(config={"threads": 1, "chunk": 1, "mode": "a"}).key

    out_of_range = admissible({"threads": 3}, space, t)
    assert not out_of_range.ok and out_of_range.candidate is None
    assert out_of_range.reasons[0].startswith("candidate:") and "fix:" in out_of_range.reasons[0]

    bad = admissible(Candidate(config={"threads": 8, "chunk": 1, "mode": "b"}, origin="planner"), space, t)
    assert bad.reasons == ("not (mode == 'b' and chunk == 1)", "threads=8 is not supported here")
    assert bad.candidate.origin == "planner"

    predicted = admissible({"threads": 4, "chunk": 16}, space, t)
    assert predicted.reasons == ("predicted infeasible: needs more memory than the machine has",)
    # without a target only the space is checked
    assert admissible({"threads": 8, "chunk": 16}, space).ok


def test_feasibility_is_the_strategies_view_of_the_same_check() -> None:
    t = target()
    feasible = feasibility(t.space(), t)
    configs = t.space().grid()
    allowed = [c for c in configs if feasible(c)]
    assert allowed == [c for c in configs if admissible(c, t.space(), t).ok]
    assert {c["threads"] for c in allowed} == {1, 4} and len(allowed) == len(configs) // 2 - 3


# -- strategies never propose, the budget never pays ------------------------------------------------------
@pytest.mark.parametrize("strategy", ["grid", "random", "tpe", "planner"])
def test_a_target_rejecting_half_the_space_still_gets_five_real_runs(tmp_path: Path, strategy: str) -> None:
    with open_session(make_job(trials=5, strategy=strategy), tmp_path) as session:
        outcome = drive(session)
        calls = session.target.calls
    assert calls == 5, [t.candidate.config for t in outcome.trials]
    assert "trial budget spent (5/5)" in outcome.stop_reason
    for trial in outcome.trials:  # the strategies never proposed what the coder would reject
        assert trial.measurement.status == Status.OK
        assert admissible(trial.candidate, session.target.space(), session.target).ok


def test_a_rejected_baseline_is_recorded_but_not_counted(tmp_path: Path) -> None:
    job = make_job(trials=5, baseline={"threads": 2})
    with open_session(job, tmp_path) as session:
        outcome = drive(session)
        calls = session.target.calls
    first = outcome.trials[0]
    assert first.candidate.origin == "baseline" and first.candidate.config["threads"] == 2
    assert first.measurement.status == Status.CONSTRAINTS and rejected_before_running(first)
    assert "threads=2 is not supported here" in first.measurement.detail
    assert calls == 5 and len(outcome.trials) == 6 and counted_trials(outcome.trials) == 5


class RejectedOnly(Strategy):
    """A strategy that ignores ``feasible``: every proposal is new and refused (alternately by the
    target's check and by the space's range), without end."""

    name = "rejected_only"

    def ask(self, history, n=1):  # type: ignore[no-untyped-def]
        i = len(history)
        config = {"threads": 2, "chunk": 1, "mode": "a"} if i == 0 else {"threads": 100 + i}
        return [Candidate(config=config)]


def test_endless_rejections_stop_the_study(tmp_path: Path) -> None:
    with open_session(make_job(trials=5), tmp_path) as session:
        session.strategy = RejectedOnly(session.target.space(), session.job.objective)
        outcome = drive(session)
        calls = session.target.calls
    assert calls == 0 and len(outcome.trials) == REJECTION_LIMIT
    assert all(rejected_before_running(t) for t in outcome.trials)
    assert outcome.stop_reason == f"the last {REJECTION_LIMIT} proposals were all rejected before running"


# -- what counts ------------------------------------------------------------------------------------------
def _trial(number: int, status: Status, *, origin: str = "sampler", wall_s: float = 0.0) -> Trial:
    return Trial(study="s", number=number, state=TrialState.FAILED if status != Status.OK else TrialState.DONE,
                 candidate=Candidate(config={"x": number}, origin=origin),
                 measurement=Measurement(status=status, wall_s=wall_s, samples=[1.0] if status == Status.OK else []))


def test_only_runs_count_toward_the_trial_budget() -> None:
    trials = [
        _trial(1, Status.OK, origin="baseline", wall_s=1.0),
        _trial(2, Status.CONSTRAINTS),  # the coder refused it: nothing ran
        _trial(3, Status.CONSTRAINTS, wall_s=0.4),  # the workload ran and said "cannot run here"
        _trial(4, Status.OK, origin="remeasure", wall_s=1.0),
        _trial(5, Status.RUNTIME, wall_s=0.2),
    ]
    assert [rejected_before_running(t) for t in trials] == [False, True, False, False, False]
    tracker = BudgetTracker(Budget(trials=3))
    tracker.count(trials)
    assert tracker.trials_used == counted_trials(trials) == 3
    assert tracker.exhausted() == "trial budget spent (3/3)" and tracker.trials_left == 0


def test_strategies_see_rejections_as_tried() -> None:
    from tunesmith.agents.strategies import STRATEGIES
    from tunesmith.runners.job import Objective

    space = SearchSpace(params=(Param(name="x", kind="choice", values=(1, 2, 3), default=1),))
    rejected = Trial(study="s", number=1, state=TrialState.FAILED, candidate=Candidate(config={"x": 2}),
                     measurement=Measurement(status=Status.CONSTRAINTS, detail="refused"))
    grid = STRATEGIES.create("grid", space, Objective())
    proposed = [c.config["x"] for c in grid.ask([rejected], 3)]
    assert proposed == [1, 3]


@pytest.mark.parametrize("name", ["grid", "random", "tpe", "offline_planner"])
def test_the_baseline_is_offered_even_when_the_target_refuses_it(name: str) -> None:
    from tunesmith.agents.strategies import STRATEGIES

    t = target()
    feasible = feasibility(t.space(), t)
    strategy = STRATEGIES.create(name, t.space(), t.job.objective, baseline={"threads": 2}, feasible=feasible)
    first = strategy.ask([], 3)
    assert first[0].origin == "baseline" and first[0].config["threads"] == 2  # the coder records why not
    assert all(feasible(c.config) for c in first[1:]) and len(first) == 3
