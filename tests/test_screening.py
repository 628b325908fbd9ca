"""Screening helpers: which far values a parameter is screened with, and what the history says about them."""

from __future__ import annotations

from typing import Any

from tunesmith.agents.strategies.screening import (
    ScreenResult,
    rank_parameters,
    screening_summary,
    screening_values,
    summary_lines,
)
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState

SPACE = SearchSpace(params=(
    Param(name="threads", kind="int", low=1, high=8, default=1),
    Param(name="mode", kind="choice", values=("a", "b", "c", "d", "e", "f"), default="a"),
    Param(name="sync", kind="choice", values=(1, 4, 16, 64), default=1),
    Param(name="flag", kind="bool", default=False),
))
BASE = SPACE.defaults()


def trial(number: int, value: float | None, **changes: Any) -> Trial:
    m = (Measurement(status=Status.RUNTIME, detail="crashed") if value is None
         else Measurement(status=Status.OK, samples=[value, value]))
    cand = Candidate(config={**BASE, **changes}, origin="planner")
    return Trial(study="s", number=number, candidate=cand, state=TrialState.DONE, measurement=m)


def test_far_values_are_the_other_end_or_both_ends_or_the_other_choices() -> None:
    threads, mode, sync, flag = SPACE.params
    assert screening_values(threads, 1) == [8]
    assert screening_values(threads, 8) == [1]
    assert screening_values(threads, 4) == [8, 1]  # from inside the range: both ends
    assert screening_values(sync, 1) == [64]  # numeric choices are ordered
    assert screening_values(flag, False) == [True]
    assert screening_values(mode, "a") == ["b", "d", "f"]  # five others thinned evenly to three
    assert screening_values(Param(name="m", kind="choice", values=("x", "y", "z"), default="y"), "y") == ["x", "z"]


def test_summary_keeps_one_parameter_changes_with_their_effect_relative_to_the_baseline() -> None:
    history = [
        trial(0, 2.0),  # the baseline
        trial(1, 0.5, sync=64),  # 75 % better
        trial(2, 2.2, threads=8),  # 10 % worse
        trial(3, None, flag=True),  # failed
        trial(4, 0.1, sync=64, threads=8),  # two changes: not a screening result
    ]
    got = screening_summary(history, SPACE, BASE, minimize=True)
    assert [(r.parameter, r.value) for r in got] == [("threads", 8), ("sync", 64), ("flag", True)]
    effects = {r.parameter: r.effect for r in got}
    assert effects["sync"] == 0.75 and abs(effects["threads"] + 0.1) < 1e-9 and effects["flag"] is None
    # maximizing flips the sign; without a measured baseline there is no effect at all
    assert screening_summary(history, SPACE, BASE, minimize=False)[1].effect == -0.75
    assert all(r.effect is None for r in screening_summary(history[1:], SPACE, BASE, minimize=True))


def test_rank_orders_by_largest_effect_either_way_and_keeps_the_given_order_for_ties() -> None:
    results = [ScreenResult("threads", 8, 2.2, -0.4), ScreenResult("sync", 64, 0.5, 0.75),
               ScreenResult("flag", True, 2.0, 0.0)]
    ranked = rank_parameters(results, ["threads", "mode", "sync", "flag"])
    assert ranked == [("sync", 0.75), ("threads", 0.4), ("flag", 0.0), ("mode", None)]


def test_summary_lines_name_the_change_and_its_size_largest_first() -> None:
    lines = summary_lines([ScreenResult("threads", 8, 2.2, -0.1), ScreenResult("sync", 64, 0.5, 0.75),
                           ScreenResult("flag", True, None, None)], BASE, "seconds")
    assert lines == ["sync 1 -> 64: 75% better (0.5 seconds)", "threads 1 -> 8: 10% worse (2.2 seconds)",
                     "flag False -> True: failed"]
