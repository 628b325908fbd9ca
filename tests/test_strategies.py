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


def test_offline_planner_screens_ranks_combines_then_descends() -> None:
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
    history = loop(strategy, 10, fn=fn)
    configs = [(t.candidate.config["a"], t.candidate.config["b"], t.candidate.config["c"]) for t in history]
    assert configs[:9] == [
        ("a0", 1, False),  # baseline
        ("a0", 4, False),  # screening in rules order: b to its far end
        ("a1", 1, False),  # a: every other choice
        ("a2", 1, False),
        ("a0", 1, True),  # c
        ("a1", 4, False),  # the screening winners together
        ("a2", 4, False),  # descent, largest effect first: a (50 %), then b, then c
        ("a1", 2, False),  # b walked down from 4: 2 is worse, so 1 is not tried
        ("a1", 4, True),
    ]
    assert history[0].candidate.origin == "baseline"
    assert all(t.candidate.origin == "planner" for t in history[1:])
    assert history[1].candidate.rationale == (
        "offline planner: screen b (#1): 1 -> 4, all else at the baseline"
    )
    assert "combine the screening winners (a=a1, b=4)" in history[5].candidate.rationale
    assert history[6].candidate.rationale == (
        "offline planner: vary a from a1 to a2 around the best so far (effect #1: 50% in screening)"
    )
    assert "TPE proposes" in history[9].candidate.rationale


def test_offline_planner_batches_hold_the_incumbent_until_results_arrive() -> None:
    strategy = make("offline_planner", rules=["block", "mode", "flag"])
    history = loop(strategy, 1)
    batch = strategy.ask(history, 4)
    got = [(c.config["block"], c.config["mode"], c.config["flag"]) for c in batch]
    assert got == [(4, "a", False), (1, "b", False), (1, "c", False), (1, "a", True)]  # all around the baseline


# -- screening offline planner: a strong knob declared last ------------------------------------------
def _bench():  # noqa: ANN202 - benchmarks/strategies.py as a module
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "strategies.py"
    spec = importlib.util.spec_from_file_location("strategies_benchmark_h7", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_offline_planner_finds_a_strong_knob_declared_last_quickly(tmp_path) -> None:  # noqa: ANN001
    from tests.synthetic import strong_last_table

    bench = _bench()
    path = tmp_path / "strong.json"
    table = strong_last_table()
    path.write_text(table.model_dump_json())
    best = min(sum(r.samples) / 3 for r in table.records)
    for seed in range(3):
        configs = bench.simulate("offline_planner", path, seed=seed, budget=12)
        # the last-declared knob is screened before any second value of the knobs declared before it
        sync_far = next(i for i, c in enumerate(configs) if c["sync"] == 64)
        assert sync_far <= 6, configs[: sync_far + 1]
        assert all(c["sync"] == 1 for c in configs[:sync_far])
        values = [bench._recorded_median(table, c) for c in configs]
        hit = bench.first_within(values, best, minimize=True, tolerance=0.10)
        assert hit is not None and hit <= 10, (seed, hit)  # 192 configs: well inside 20 % of the space


def test_offline_planner_screens_the_next_value_when_the_far_one_is_infeasible() -> None:
    space = SearchSpace(params=(
        Param(name="mode", kind="choice", values=("a", "b"), default="a"),
        Param(name="size", kind="pow2", low=1, high=16, default=1),
    ))
    strategy = make("offline_planner", space, feasible=lambda c: c["size"] <= 4)
    history = loop(strategy, 3, fn=lambda c: 1.0 / c["size"] + (c["mode"] == "b"))
    screened = [t.candidate.config for t in history[1:]]
    assert screened == [{"mode": "b", "size": 1}, {"mode": "a", "size": 4}]  # 16 and 8 refused: 4 stands in


def test_strategies_benchmark_reports_5_and_10_percent_on_a_small_table(tmp_path) -> None:  # noqa: ANN001
    import json

    from tests.synthetic import strong_last_table

    bench = _bench()
    table = tmp_path / "strong_sweep.json"
    table.write_text(strong_last_table().model_dump_json())
    out = tmp_path / "results.json"
    argv = ["--table", str(table), "--repeats", "3", "--budget", "20", "--json", str(out),
            "--start", "default", "--start", "random", "--strategy", "random", "--strategy", "offline_planner"]
    assert bench.main(argv) == 0
    data = json.loads(out.read_text())
    assert [e["start"] for e in data["tables"]] == ["default", "random"]
    for entry in data["tables"]:
        assert entry["configs"] == 192 and entry["worst_median"] > 3 * entry["best_median"]
        planner = entry["strategies"]["offline_planner"]
        assert set(planner["within"]) == {"5%", "10%"}
        five, ten = planner["within"]["5%"], planner["within"]["10%"]
        assert len(ten["hits"]) == 3 and all(h is not None and h <= 20 for h in ten["hits"])
        assert all(t <= f for t, f in zip(ten["hits"], five["hits"], strict=True) if f is not None)
        assert planner["hits"] == five["hits"]  # --tolerance (5 %) stays the headline
