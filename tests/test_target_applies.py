"""A target accepts only the ways of applying a parameter it implements (Param.apply); the rest is refused."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from tunesmith.runners.base import Target
from tunesmith.runners.errors import JobError
from tunesmith.runners.job import parse_job
from tunesmith.runners.space import Param, SearchSpace


class _Workload(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _target(apply: str) -> type[Target]:
    class Plain(Target):
        name: ClassVar[str] = "plain"
        domain: ClassVar[str] = "test"
        workload_model: ClassVar[type[BaseModel]] = _Workload

        def base_space(self) -> SearchSpace:
            return SearchSpace(params=(Param(name="knob", kind="int", low=1, high=4, default=1, apply=apply),))

        def evaluate(self, candidate, ctx):  # noqa: ANN001, ANN201 - never reached
            raise AssertionError

    return Plain


@pytest.mark.parametrize("apply", ["setting", "meta"])
def test_a_new_target_refuses_what_it_does_not_declare(apply: str) -> None:
    job = parse_job({"name": "t", "target": "plain"})
    with pytest.raises(JobError) as err:
        _target(apply)(job).space()
    assert apply in err.value.line() and "fix:" in err.value.line()


@pytest.mark.parametrize("apply", ["arg", "env"])
def test_a_new_target_accepts_arguments_and_environment(apply: str) -> None:
    job = parse_job({"name": "t", "target": "plain"})
    assert _target(apply)(job).space().names == ["knob"]
