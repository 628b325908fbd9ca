"""Observers: profilers and tracers that attach to a trial and add metrics and files to its measurement.

An observer sees every process run of a trial: ``prepare`` may change the run before it starts (wrap the
command in a profiler, add ``LD_PRELOAD`` or an output path to the environment), ``collect`` reads each
result, and ``finish`` turns what it saw into metrics (named ``<prefix>.<what>``, e.g. ``res.cpu_s``),
one-line notes and artifacts on the measurement. Targets stay free of profiling code: a new observer is
one module with a subclass and one line in ``OBSERVERS`` (``tunesmith.runners.observers``).

An instance serves one trial (the context builds a fresh set per trial), so it may keep per-trial state.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

from ..base import RunResult, RunSpec
from ..types import Measurement

if TYPE_CHECKING:
    from ..context import TrialContext


class Observer(abc.ABC):
    """Watches a trial's runs and adds metrics, notes and artifacts to its measurement.

    ``passive`` observers only read what the runner reports and never change how the workload runs, so
    they are left out of the study's definition hash; an observer that wraps or preloads (a profiler)
    sets it False, and switching it on or off is then a changed study.
    """

    name: ClassVar[str] = ""
    passive: ClassVar[bool] = False

    def __init__(self) -> None:
        self.errors: list[str] = []  # problems met while collecting; reported as a note by the context

    def prepare(self, spec: RunSpec, ctx: TrialContext) -> RunSpec:
        """The spec to run instead of ``spec`` (return it unchanged to only watch)."""
        return spec

    def collect(self, result: RunResult, ctx: TrialContext) -> None:
        """Read one run's result (``ctx.runs[-1]`` is that run, with its spec and whether it was timed)."""

    @abc.abstractmethod
    def finish(self, measurement: Measurement, ctx: TrialContext) -> Measurement:
        """The measurement with this observer's metrics, notes and artifacts added."""


def add_to(measurement: Measurement, *, metrics: dict[str, float] | None = None, notes: list[str] | None = None,
           artifacts: dict[str, str] | None = None) -> Measurement:
    """A copy of ``measurement`` with metrics, notes and artifacts added (existing metrics are kept)."""
    update = {
        "metrics": {**(metrics or {}), **measurement.metrics},
        "notes": [*measurement.notes, *(notes or [])],
        "artifacts": {**measurement.artifacts, **(artifacts or {})},
    }
    return measurement.model_copy(update=update)
