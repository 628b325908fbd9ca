"""The trial context: everything a target needs to evaluate one candidate, handed to ``Target.evaluate``.

A ``TrialContext`` carries the runner, the trial's scratch folder, how many timed and untimed runs to do,
the change ledger (every change outside the scratch folder is recorded there first, so it is undone on
every exit path), the observers that watch each run, and the job's limits. Targets run processes through
``ctx.run(spec)`` rather than ``runner.run(spec)``, so that every observer can prepare the run (wrap the
command, add environment variables such as ``LD_PRELOAD``) and read its result. The caller turns the
observations into metrics with ``ctx.finish(measurement)`` once the target is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Runner, RunResult, RunSpec
from .errors import InfrastructureError
from .types import Measurement

if TYPE_CHECKING:
    from .changes import ChangeLedger
    from .job import Job
    from .observers.base import Observer


@dataclass
class ObservedRun:
    """One process run of a trial as the observers saw it: what ran, what it produced, whether timed."""

    spec: RunSpec
    result: RunResult
    timed: bool
    label: str = ""


@dataclass
class TrialContext:
    """One trial's runner, scratch folder, repeats, warm-up, change ledger, observers and limits.

    ``repeats`` timed samples or runs and ``warmup`` untimed runs first (targets that warm up inside one
    process ignore ``warmup``). ``runs`` lists what ``run`` has done so far in this trial.
    """

    runner: Runner | None
    workdir: Path
    repeats: int = 1
    warmup: int = 0
    ledger: ChangeLedger | None = None
    observers: Sequence[Observer] = ()
    study: str = ""
    trial: int | None = None
    timeout_s: float = 300.0
    memory_mb: int | None = 8192
    nproc: int = 1
    env: dict[str, str] = field(default_factory=dict)
    runs: list[ObservedRun] = field(default_factory=list)

    @classmethod
    def for_job(
        cls,
        job: Job,
        runner: Runner | None,
        workdir: Path,
        *,
        repeats: int | None = None,
        ledger: ChangeLedger | None = None,
        observers: Sequence[Observer] | None = None,
        trial: int | None = None,
    ) -> TrialContext:
        """A context with the job's ``[measure]`` and ``[runner]`` settings.

        ``observers=None`` builds the job's ``[measure] observers`` afresh (one set per trial).
        """
        if observers is None:
            from .observers import build_observers

            observers = build_observers(getattr(job.measure, "observers", ()))
        return cls(
            runner=runner,
            workdir=Path(workdir),
            repeats=job.measure.repeats if repeats is None else repeats,
            warmup=job.measure.warmup,
            ledger=ledger,
            observers=list(observers),
            study=job.name,
            trial=trial,
            timeout_s=job.runner.timeout_s,
            memory_mb=job.runner.memory_mb,
            nproc=job.runner.nproc,
            env=dict(job.runner.env),
        )

    def spec(self, argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
             **extra: Any) -> RunSpec:
        """A RunSpec with this trial's limits and the job's runner environment (``env`` is added on top)."""
        fields: dict[str, Any] = {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "nproc": self.nproc}
        fields.update(extra)
        return RunSpec(argv=argv, cwd=cwd or self.workdir, env={**self.env, **(env or {})}, **fields)

    def run(self, spec: RunSpec, *, timed: bool = True, label: str = "") -> RunResult:
        """Let every observer prepare ``spec``, run it, record it, and let every observer read the result.

        An observer that cannot read a result leaves a note on its measurement instead of failing the trial.
        """
        if self.runner is None:
            raise InfrastructureError("this trial has no runner to run a process", "pass a runner to the context")
        for observer in self.observers:
            spec = observer.prepare(spec, self)
        result = self.runner.run(spec)
        self.runs.append(ObservedRun(spec=spec, result=result, timed=timed, label=label))
        for observer in self.observers:
            try:
                observer.collect(result, self)
            except Exception as exc:  # noqa: BLE001 - a broken observer must not lose the measurement
                observer.errors.append(f"{type(exc).__name__}: {exc}"[:200])
        return result

    def timed_runs(self) -> list[ObservedRun]:
        """The runs that produced samples; every run if none was marked timed (a failed warm-up)."""
        timed = [r for r in self.runs if r.timed]
        return timed or list(self.runs)

    def finish(self, measurement: Measurement) -> Measurement:
        """The measurement with every observer's metrics, notes and files added (failures become notes)."""
        for observer in self.observers:
            try:
                measurement = observer.finish(measurement, self)
            except Exception as exc:  # noqa: BLE001 - see run()
                observer.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            if observer.errors:
                note = f"observer {observer.name} failed: {observer.errors[0]}"
                measurement = measurement.model_copy(update={"notes": [*measurement.notes, note]})
                observer.errors.clear()
        return measurement
