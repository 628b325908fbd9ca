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
