"""Search spaces: kinds, grids, coercion, constraints and one-line errors for unknown parameters."""

from __future__ import annotations

import random

import pytest

from tunesmith.runners.errors import JobError
from tunesmith.runners.space import Param, SearchSpace


def space() -> SearchSpace:
    return SearchSpace(
        params=(
            Param(name="threads", kind="pow2", low=1, high=8, default=1),
            Param(name="mode", kind="choice", values=("a", "b"), default="a"),
            Param(name="direct", kind="bool", default=False),
            Param(name="lr", kind="log_float", low=1e-4, high=1e-1, default=1e-3),
        ),
        constraints=("not (direct and threads > 4)",),
    )


def test_grid_respects_constraints() -> None:
    s = space()
    grid = s.grid(points=3)
    assert all(not (c["direct"] and c["threads"] > 4) for c in grid)
    assert len(grid) == (4 * 2 * 2 - 2) * 3  # threads=8 with direct removed


def test_pow2_grid_and_membership() -> None:
    p = space().get("threads")
    assert p.grid() == [1, 2, 4, 8]
    assert p.contains(4) and not p.contains(3) and not p.contains(16)


def test_validate_config_coerces_and_fills_defaults() -> None:
    cfg = space().validate_config({"threads": "4", "direct": "true"})
    assert cfg == {"threads": 4, "mode": "a", "direct": True, "lr": 1e-3}


@pytest.mark.parametrize(("config", "needle"), [({"thread": 2}, "unknown parameter 'thread'"),
                                                 ({"threads": 3}, "threads"), ({"mode": "z"}, "mode")])
def test_bad_config_one_line(config: dict, needle: str) -> None:
    with pytest.raises(JobError) as info:
        space().validate_config(config, where="baseline")
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_default_outside_range_rejected() -> None:
    with pytest.raises(ValueError):
        Param(name="x", kind="int", low=1, high=4, default=9)


def test_sample_stays_in_range() -> None:
    rng = random.Random(0)
    s = space()
    for _ in range(200):
        for p in s.params:
            assert p.contains(p.sample(rng))


def test_restrict_overrides_values() -> None:
    s = space().restrict({"mode": {"values": ["b"], "default": "b"}})
    assert s.get("mode").grid() == ["b"] and s.get("mode").source.kind == "user"


# bad definitions: every one is a one-line error naming the parameter and the fix -----------------------
def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "fix:" in text
    return text


@pytest.mark.parametrize(
    ("expr", "needle"),
    [
        ("thread <= 4", "constraints[2]: unknown parameter 'thread' in 'thread <= 4'; fix: use one of threads"),
        ("threads <= ", "does not parse"),
        ("threads.bit_length() < 3", "calls threads.bit_length()"),
        ("__import__('os').getpid() > 0", "calls __import__('os').getpid()"),
        ("len(mode) == 1", "calls len()"),
        ("[t for t in (1, 2)] == [1]", "a comprehension"),
        ("mode[0] == 'a'", "indexing"),
        ("threads is None", "'is'"),
        ("min = 3", "does not parse"),
        ("", "is not a condition"),
    ],
)
def test_bad_constraint_is_refused_naming_it(expr: str, needle: str) -> None:
    s = SearchSpace(params=space().params, constraints=("threads <= 8", expr))
    with pytest.raises(JobError) as info:
        s.check_constraints(where="workload.constraints")
    text = one_line(info)
    assert needle in text and text.startswith("workload.constraints[2]: ")


def test_good_constraints_pass_the_check_and_evaluate() -> None:
    s = SearchSpace(params=space().params, constraints=(
        "not (direct and threads > 4)", "min(threads, 4) * 2 <= max(abs(-8), 1)", "mode in ('a', 'b')",
        "threads & (threads - 1) == 0", "lr < 0.05 if direct else True"))  # fmt: skip
    s.check_constraints()
    assert s.violations({"threads": 8, "mode": "a", "direct": True, "lr": 1e-3}) == [s.constraints[0]]
    assert s.violations({"threads": 2, "mode": "a", "direct": True, "lr": 0.09}) == [s.constraints[4]]


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"low": 8.0, "high": 2.0}, "low 8 is above high 2"),
        ({"low": 1.0, "high": float("nan")}, "high nan is not a finite number"),
        ({"low": float("-inf"), "high": 2.0}, "low -inf is not a finite number"),
    ],
)
def test_param_bounds_nan_and_inverted_have_plain_messages(fields: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Param(name="x", kind="float", default=1.0, **fields)


def test_coerce_refuses_nan_and_inf() -> None:
    p = Param(name="x", kind="float", low=0, high=10, default=1.0)
    for bad in (float("nan"), "inf"):
        with pytest.raises(ValueError, match="finite"):
            p.coerce(bad)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"threads": {"values": ["2", "4"]}}, "space.threads.values: '2' is not a number"),
        ({"threads": {"values": [1.0, 4.0]}}, "space.threads.values: 1.0 is not a whole number"),
        ({"threads": {"values": [1, 16]}}, "16 is outside the range of threads [1, 2, 4, 8]"),
        ({"threads": {"values": [1, 3]}}, "3 is outside the range of threads"),
        ({"threads": {"values": []}}, "space.threads.values: must be a non-empty list"),
        ({"threads": {"values": 4}}, "space.threads.values: must be a non-empty list"),
        ({"threads": {"values": [1, float("nan")]}}, "nan is not a finite number"),
        ({"threads": {"values": [2, 4]}}, "the default 1 is not among the values; fix: add 1 to values"),
        ({"threads": {"values": [1, 2], "high": 4}}, "both values and high are given"),
        ({"direct": {"values": [True]}}, "space.direct.values: a bool parameter has no values list"),
        ({"mode": {"values": ["z"]}}, "space.mode.values: 'z' is not one of the values of mode; fix: pick from 'a', 'b'"),
        ({"mode": {"values": [1]}}, "1 is not one of the values of mode"),
        ({"mode": {"low": 1}}, "space.mode.low: a choice parameter has no low"),
        ({"threads": {"vlaues": [1, 2]}}, "space.threads.vlaues: unknown field; fix: use default, low, high, values"),
        ({"threads": {"kind": "int"}}, "space.threads.kind: cannot be changed here"),
        ({"threads": {"apply": "env"}}, "space.threads.apply: cannot be changed here"),
        ({"threads": {"low": 8, "high": 2}}, "space.threads: low 8 is above high 2; fix: swap them"),
        ({"threads": {"high": float("nan")}}, "space.threads.high: nan is not a finite number"),
        ({"threads": {"high": 16}}, "space.threads.high: 16 is outside the range of threads [1, 8]"),
        ({"threads": {"low": "2"}}, "space.threads.low: '2' is not a number"),
        ({"threads": {"default": float("inf")}}, "space.threads.default: inf is not a finite number"),
        ({"threads": {"default": 3}}, "space.threads: default 3 is outside its range"),
        ({"threads": {"step": 2}}, "space.threads.step: a pow2 parameter has no step"),
        ({"lr": {"low": 1e-2, "high": 1e-3}}, "low 0.01 is above high 0.001"),
        ({"thread": {"values": [1]}}, "space: unknown parameter 'thread'"),
        ({"threads": [1, 2]}, "space.threads: expected a table of fields"),
    ],
)
def test_bad_space_override_is_one_line(override: dict, needle: str) -> None:
    with pytest.raises(JobError) as info:
        space().restrict(override, narrow=True)
    assert needle in one_line(info)


def test_values_on_a_numeric_parameter_narrow_it_to_a_choice() -> None:
    s = space().restrict({"threads": {"values": [8, 1, 4, 4]}, "lr": {"low": 1e-3, "high": 1e-2}}, narrow=True)
    threads = s.get("threads")
    assert threads.kind == "choice" and threads.grid() == [1, 4, 8] and threads.default == 1
    assert not threads.contains(2) and s.get("lr").low == 1e-3 and s.get("lr").source.kind == "user"
    narrowed = space().restrict({"threads": {"low": 2, "high": 4, "default": 2}}, narrow=True).get("threads")
    assert narrowed.grid() == [2, 4] and narrowed.kind == "pow2"


def test_code_may_widen_a_choice_without_narrow() -> None:
    s = space().restrict({"mode": {"values": ["a", "z"]}})
    assert s.get("mode").grid() == ["a", "z"]
    with pytest.raises(JobError, match="not one of the values"):
        space().restrict({"mode": {"values": [1]}})  # still the same kind of value
