"""The two hardware-boundary abstractions: a Runner runs a process, a Target turns a candidate into runs.

A ``Target`` is a domain plugin (a Triton kernel's configs, a workload's I/O settings, a training job's
parallel layout). It builds the search space, checks and optionally predicts a candidate before anything
runs, evaluates it and returns a ``Measurement``. ``evaluate`` receives a ``TrialContext``
(``runners/context.py``): the runner, the scratch folder, repeats and warm-up, the observers that watch
every run (``ctx.run``) and the ``ChangeLedger`` through which every change outside the scratch folder goes,
so it is undone on every exit path. A run's outcome maps to a status in one place, ``runners/outcome.py``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import JobError
from .job import Job
from .space import SearchSpace
from .types import Candidate, Measurement

if TYPE_CHECKING:
    from .context import TrialContext

RESULT_ENV = "TUNESMITH_RESULT"  # path where a workload writes its result JSON
REPORT_PREFIX = "@@tunesmith "  # a stdout line "@@tunesmith {json}" reports an intermediate value


class RunSpec(BaseModel):
    """One process to run: argv, environment additions, scratch folder, limits."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    argv: list[str]
    cwd: Path
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = 300
    memory_mb: int | None = 8192
    nproc: int = 1  # processes per node for launchers such as torchrun
    on_report: Callable[[dict[str, Any]], bool] | None = Field(default=None, exclude=True)

    @property
    def result_path(self) -> Path:
        return self.cwd / "result.json"


class RunResult(BaseModel):
    """What a process run produced, before any domain interpretation."""

    returncode: int | None
    timed_out: bool = False
    memory_exceeded: bool = False
    stopped_early: bool = False  # on_report asked to stop (a scheduler's decision)
    wall_s: float = 0.0
    stdout_tail: str = ""
    stderr_tail: str = ""
    result: dict[str, Any] | None = None  # the workload's result JSON, if it wrote one
    reports: list[dict[str, Any]] = Field(default_factory=list)  # the latest ones, bounded by the runner
    reports_dropped: int = 0  # older report lines not kept in ``reports`` (count and size bounds)
    launch_error: str = ""  # the runner could not start the process at all
    # Resource use of the whole process tree, filled by the runner that watched it: cpu_user_s, cpu_system_s,
    # peak_rss_mb, read_bytes, write_bytes (observers turn these into trial metrics).
    resources: dict[str, float] = Field(default_factory=dict)


class Runner(abc.ABC):
    """Runs a RunSpec somewhere (local subprocess, torchrun, a remote host) and returns a RunResult."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def run(self, spec: RunSpec) -> RunResult:
        """Run to completion or limit; never raise for the candidate's own failures."""

    def available(self) -> tuple[bool, str]:
        """Whether this runner can run here, and if not, why."""
        return True, ""

    def close(self) -> None:
        """Give back what the runner holds between runs (e.g. reused cgroups); called when a study ends."""

    def attach(self, job: Job, scratch: Path) -> None:
        """Bind to a study: the job (secrets it passes to workloads) and the scratch folder (live-run records)."""


class Prediction(BaseModel):
    """A model's forecast for a candidate before it runs; ``feasible=False`` prunes it."""

    feasible: bool = True
    metric: float | None = None
    memory_mb: float | None = None
    reason: str = ""


class Target(abc.ABC):
    """A domain plugin. Subclasses set ``name``, ``domain`` and ``workload_model``."""

    name: ClassVar[str] = ""
    domain: ClassVar[str] = ""
    workload_model: ClassVar[type[BaseModel]]
    default_metric: ClassVar[str] = "seconds"
    # How this target can apply a parameter (Param.apply); a parameter asking for anything else is refused.
    # A target declares what it really applies: "setting" (an outside-world setting, recorded in the change
    # ledger and restored) is accepted only by targets that implement an applier for it.
    applies: ClassVar[tuple[str, ...]] = ("arg", "env")
    # A resource every candidate's measurement shares ("disk", "network"): candidates then run one at a time
    # whatever the job's [runner] executor says. None: candidates on separate devices do not disturb each other.
    shared_resource: ClassVar[str | None] = None

    def __init__(self, job: Job) -> None:
        self.job = job
        try:
            self.workload = self.workload_model.model_validate(job.workload)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = "workload." + ".".join(str(x) for x in err["loc"])
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            raise JobError(f"{loc}: {msg}", f"see the {self.name} target's fields in the README") from None
        from .observers import check_observers

        check_observers(getattr(job.measure, "observers", ()))
        self._space: SearchSpace | None = None

    # -- what to search ---------------------------------------------------------------------------
    @abc.abstractmethod
    def base_space(self) -> SearchSpace:
        """The target's own parameters before the job's overrides."""

    def space(self) -> SearchSpace:
        """The search space with the job's ``[space]`` overrides applied (validated once)."""
        if self._space is None:
            base = self.base_space()
            unknown = sorted(set(self.job.space) - set(base.names))
            if unknown:
                raise JobError(f"space: unknown parameter {unknown[0]!r}", f"use one of {', '.join(base.names)}")
            try:
                space = base.restrict(self.job.space, narrow=True)
            except ValidationError as exc:
                raise JobError(f"space: {exc.errors()[0]['msg']}", "fix that parameter's override") from None
            for p in space.params:
                if p.apply not in self.applies:
                    why = {"setting": " (outside-world settings come with the I/O appliers)",
                           "meta": " (meta is for kernel launch parameters)"}.get(p.apply, "")
                    raise JobError(f"parameter {p.name!r}: apply = {p.apply!r} is not applied by the {self.name} "
                                   f"target", f"use {' or '.join(map(repr, self.applies))}{why}")
            space.check_constraints(where="workload.constraints")
            self._space = space
        return self._space

    def baseline(self) -> Candidate:
        space = self.space()
        config = space.validate_config(self.job.baseline, where="baseline")
        broken = space.violations(config)
        if broken:
            raise JobError(f"baseline: the default configuration breaks the constraint {broken[0]!r}",
                           "set [baseline] values that satisfy it, or correct the constraint")
        return Candidate(config=config, origin="baseline", rationale="the default configuration")

    def check(self, candidate: Candidate) -> list[str]:
        """Reasons the candidate cannot run (beyond the space's constraints); empty if it can."""
        return []

    def predict(self, candidate: Candidate) -> Prediction | None:
        """An optional performance/memory model; None when the target has none."""
        return None

    # -- how to run it ----------------------------------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, candidate: Candidate, ctx: TrialContext) -> Measurement:
        """Run the candidate (``ctx.repeats`` samples or runs, through ``ctx.run``) and interpret the result.

        The caller adds the observers' metrics afterwards with ``ctx.finish``.
        """

    def preflight(self) -> None:
        """Raise JobError if the workload cannot run at all here (missing file, missing tool)."""

    def close(self) -> None:
        """Undo every outside change this target made (called on every exit path)."""

    # -- what to tell the agents ------------------------------------------------------------------
    def signature(self) -> str:
        """A short workload signature for reflections and retrieval."""
        return f"{self.domain}/{self.name}"

    def describe(self) -> str:
        """Context for the planner: what the workload is and what each knob does."""
        lines = [f"target {self.name} ({self.domain}): {self.job.description}".strip()]
        for p in self.space().params:
            lines.append(f"- {p.name} ({p.kind}, default {p.default!r}, range {p.describe_range()}): {p.help}")
        return "\n".join(lines)

    def rules(self) -> list[str]:
        """Parameter names in the order a knowledgeable engineer would try them (offline planner)."""
        return self.space().names

    def fingerprint(self) -> dict[str, Any]:
        from .fingerprint import environment_fingerprint

        return environment_fingerprint()
