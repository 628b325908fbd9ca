"""Conformance suite for every registered strategy, plus strategy-specific behaviour.

Adding a strategy: register it in ``tunesmith.agents.strategies`` and add one entry to ``FACTORIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tunesmith.agents.strategies import STRATEGIES
from tunesmith.agents.strategies.base import Strategy
from tunesmith.runners.job import Objective
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState


def _registered(name: str) -> Callable[..., Strategy]:
    return lambda *args, **kwargs: STRATEGIES.create(name, *args, **kwargs)


# name -> factory(space, objective, **common); one line per strategy
FACTORIES: dict[str, Callable[..., Strategy]] = {
    "grid": _registered("grid"),
    "random": _registered("random"),
    "tpe": _registered("tpe"),
    "offline_planner": _registered("offline_planner"),
}
NAMES = sorted(FACTORIES)

SMALL = SearchSpace(
    params=(
        Param(name="mode", kind="choice", values=("a", "b", "c"), default="a"),
        Param(name="block", kind="pow2", low=1, high=4, default=1),
        Param(name="flag", kind="bool", default=False),
    ),
    constraints=("not (mode == 'c' and block == 4)",),
)  # 18 combinations, 16 satisfy the constraint


def no_flag_with_block_2(config: dict[str, Any]) -> bool:
    return not (config["flag"] and config["block"] == 2)


FEASIBLE_IN_SMALL = [c for c in SMALL.grid() if no_flag_with_block_2(c)]  # 13 configs


def cost(config: dict[str, Any]) -> float:
    return (
        1.0
        + {"a": 2.0, "b": 0.5, "c": 1.0}[config["mode"]]
        + abs(config["block"] - 2)
        + (0.3 * config["flag"])
    )


def measure(candidate: Candidate, number: int, fn: Callable[[dict[str, Any]], float | None] = cost) -> Trial:
    value = fn(candidate.config)
    if value is None:
        m = Measurement(status=Status.RUNTIME, detail="crashed")
    else:
        m = Measurement(status=Status.OK, samples=[value, value * 1.01, value * 0.99])
    return Trial(study="t", number=number, candidate=candidate, state=TrialState.DONE, measurement=m)


def make(name: str, space: SearchSpace = SMALL, *, seed: int = 0, **kwargs: Any) -> Strategy:
    return FACTORIES[name](space, Objective(), seed=seed, **kwargs)


def loop(
    strategy: Strategy, trials: int, *, batch: int = 1, fn=cost, stop: float | None = None
) -> list[Trial]:
    """Ask, measure, append until ``trials`` trials, an empty answer, or a trial measuring ``stop``."""
    history: list[Trial] = []
    while len(history) < trials and not (
        stop is not None and history and history[-1].measurement.median == stop
    ):
        proposals = strategy.ask(history, batch)
        assert len(proposals) <= batch
        if not proposals:
            break
        for c in proposals:
            history.append(measure(c, len(history), fn))
    return history


def test_every_registered_strategy_is_in_the_suite() -> None:
    missing = set(STRATEGIES.names()) - set(FACTORIES) - {"planner"}  # the LLM planner has its own suite
    assert not missing, f"add {sorted(missing)} to FACTORIES in tests/test_strategies.py"


# -- conformance -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_baseline_is_proposed_first(name: str) -> None:
    strategy = make(name, baseline={"mode": "b", "block": 2})
    first = strategy.ask([], 1)
    assert len(first) == 1
    assert first[0].config == {"mode": "b", "block": 2, "flag": False}
    assert first[0].origin == "baseline"
    assert strategy.ask([measure(first[0], 0)], 1)[0].config != first[0].config


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 3])
def test_never_proposes_a_tried_key_or_an_infeasible_config(name: str, batch: int) -> None:
    strategy = make(name, feasible=no_flag_with_block_2)
    history = loop(
        strategy, 40, batch=batch, fn=lambda c: None if c["mode"] == "b" and c["flag"] else cost(c)
    )
    keys = [t.candidate.key for t in history]
    assert len(keys) == len(set(keys))
    for t in history:
        assert no_flag_with_block_2(t.candidate.config), t.candidate.config
        assert not SMALL.violations(t.candidate.config)
        assert SMALL.validate_config(t.candidate.config) == t.candidate.config
    assert len(history) == len(FEASIBLE_IN_SMALL)


@pytest.mark.parametrize("name", NAMES)
def test_returns_nothing_when_the_space_is_exhausted(name: str) -> None:
    strategy = make(name, feasible=no_flag_with_block_2)
    history = loop(strategy, 100)
    assert sorted(t.candidate.key for t in history) == sorted(
        Candidate(config=c).key for c in FEASIBLE_IN_SMALL
    )
    assert strategy.ask(history, 1) == []
    assert strategy.ask(history, 5) == []


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_the_same_seed_and_history(name: str) -> None:
    a = [t.candidate.config for t in loop(make(name, seed=7), 9)]
    b = [t.candidate.config for t in loop(make(name, seed=7), 9)]
    assert a == b


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("cut", [0, 1, 4, 8])
def test_resumes_where_a_fresh_instance_would(name: str, cut: int) -> None:
    first = make(name, seed=3)
    history = loop(first, cut)
    resumed = make(name, seed=3)
    assert [c.key for c in resumed.ask(history, 2)] == [c.key for c in first.ask(history, 2)]


@pytest.mark.parametrize("name", NAMES)
def test_continuous_and_wide_integer_parameters_stay_in_range(name: str) -> None:
    space = SearchSpace(
        params=(
            Param(name="lr", kind="log_float", low=1e-5, high=1e-1, default=1e-3),
            Param(name="frac", kind="float", low=0.0, high=1.0, default=0.5),
            Param(name="workers", kind="int", low=1, high=64, default=4),
        ),
        constraints=("frac < 0.9",),
    )
    strategy = make(name, space, seed=1)
    history = loop(strategy, 15, fn=lambda c: abs(c["frac"] - 0.3) + c["workers"] / 64 + c["lr"])
    assert len(history) == 15
    assert len({t.candidate.key for t in history}) == 15
    for t in history:
        assert space.validate_config(t.candidate.config) == t.candidate.config
        assert t.candidate.config["frac"] < 0.9


# -- strategy-specific -----------------------------------------------------------------------------
def test_grid_walks_the_grid_in_order_after_the_baseline() -> None:
    history = loop(make("grid", baseline={"mode": "b"}), 5)
    assert [t.candidate.config for t in history] == [
        {"mode": "b", "block": 1, "flag": False},
        *SMALL.grid()[:4],
    ]


def test_tpe_finds_the_optimum_in_fewer_trials_than_the_grid() -> None:
    space = SearchSpace(
        params=(
            Param(name="x", kind="int", low=0, high=11, default=0),
            Param(name="y", kind="int", low=0, high=11, default=0),
        )
    )

    def trials_to_optimum(name: str, seed: int) -> int:
        strategy = make(name, space, seed=seed)
        history = loop(strategy, 144, fn=lambda c: (c["x"] - 10) ** 2 + (c["y"] - 9) ** 2 + 1.0, stop=1.0)
        values = [t.measurement.median for t in history]
        return values.index(1.0) + 1

    grid = trials_to_optimum("grid", 0)
    assert grid == 130  # the baseline (0, 0) = grid point 0, then (0, 1) ... (10, 9) = grid point 129
    tpe = [trials_to_optimum("tpe", seed) for seed in range(4)]
    assert sum(tpe) / len(tpe) < grid / 2, tpe


def test_tpe_maximizes_when_the_objective_says_so() -> None:
    space = SearchSpace(params=(Param(name="x", kind="int", low=0, high=40, default=0),))
    strategy = STRATEGIES.create("tpe", space, Objective(metric="gflops", direction="maximize"), seed=0)
    history = loop(strategy, 25, fn=lambda c: 100.0 - abs(c["x"] - 30))
    late = [t.candidate.config["x"] for t in history[15:]]
    assert sum(abs(x - 30) for x in late) / len(late) < 10, late


def test_offline_planner_follows_the_rules_order_and_moves_the_incumbent() -> None:
    space = SearchSpace(
        params=(
            Param(name="a", kind="choice", values=("a0", "a1", "a2"), default="a0"),
            Param(name="b", kind="pow2", low=1, high=4, default=1),
            Param(name="c", kind="bool", default=False),
        )
    )

    def fn(config: dict[str, Any]) -> float:
        return (
            {"a0": 3.0, "a1": 1.0, "a2": 2.0}[config["a"]]
            + {1: 1.0, 2: 0.5, 4: 0.0}[config["b"]]
            + config["c"]
        )

    strategy = make("offline_planner", space, rules=["b", "a"])  # c is appended last
    history = loop(strategy, 8, fn=fn)
    configs = [(t.candidate.config["a"], t.candidate.config["b"], t.candidate.config["c"]) for t in history]
    assert configs[:6] == [
        ("a0", 1, False),  # baseline
        ("a0", 2, False),  # rule #1: b around the baseline
        ("a0", 4, False),
        ("a1", 4, False),  # rule #2: a around the new incumbent b=4
        ("a2", 4, False),
        ("a1", 4, True),  # c around a=a1, b=4
    ]
    assert history[0].candidate.origin == "baseline"
    assert all(t.candidate.origin == "planner" for t in history[1:])
    assert (
        history[1].candidate.rationale
        == "offline planner: vary b (rule #1) from 1 to 2 around the best so far"
    )
    assert "rule #2" in history[3].candidate.rationale and "from a0 to a1" in history[3].candidate.rationale
    assert all("coordinate pass done" in t.candidate.rationale for t in history[6:])


def test_offline_planner_batches_hold_the_incumbent_until_results_arrive() -> None:
    strategy = make("offline_planner", rules=["block", "mode", "flag"])
    history = loop(strategy, 1)
    batch = strategy.ask(history, 4)
    assert [(c.config["block"], c.config["mode"]) for c in batch] == [(2, "a"), (4, "a"), (1, "b"), (1, "c")]
