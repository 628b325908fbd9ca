"""Replay a recorded exhaustive sweep: strategies and the agent graph run without hardware.

Like Kernel Tuner's simulation runner, ``ReplayTarget`` answers ``evaluate`` from a table written by
``record_sweep`` (every grid config of a real target, measured once): the recorded status, metrics and
samples, either as recorded (``noise = "none"``) or resampled with replacement (``noise = "resample"``)
with a random stream seeded from (seed, config key, how often that config was asked), so a config
measures the same no matter which strategy reaches it, or when. Continuous parameters (and integer
ranges the grid sub-samples) become choices over their recorded values, so every proposal has a record.

Table format (JSON)::

    {"space": <SearchSpace>, "objective": {"metric": ..., "direction": ...},
     "records": [{"config": {...}, "status": "ok", "samples": [...], "metrics": {...}}, ...],
     "target": "...", "signature": "...", "rules": [...], "baseline": {...}, "fingerprint": {...}}
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..base import Runner, Target
from ..context import TrialContext
from ..errors import JobError
from ..job import Objective
from ..space import Param, SearchSpace, Value
from ..stats import median
from ..types import Candidate, Measurement, Status, candidate_key


class ReplayRecord(BaseModel):
    """One recorded evaluation: the config, its status and raw samples of the objective metric."""

    config: dict[str, Value]
    status: Status = Status.OK
    samples: list[float] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    detail: str = ""
    wall_s: float = 0.0


class ReplayTable(BaseModel):
    """A recorded sweep: the space, the objective, and one record per config."""

    space: SearchSpace
    objective: Objective = Field(default_factory=Objective)
    records: list[ReplayRecord]
    target: str = ""
    signature: str = ""
    rules: list[str] = Field(default_factory=list)
    baseline: dict[str, Value] = Field(default_factory=dict)
    fingerprint: dict[str, Any] = Field(default_factory=dict)
    repeats: int | None = None

    @classmethod
    def load(cls, path: str | Path) -> ReplayTable:
        p = Path(path)
        if not p.is_file():
            raise JobError(
                f"workload.table: {str(p)!r} does not exist",
                "record one with benchmarks/strategies.py --record",
            )
        try:
            return cls.model_validate_json(p.read_text(encoding="utf-8"))
        except (ValidationError, ValueError) as exc:
            raise JobError(
                f"workload.table: {p.name} is not a replay table ({exc})", "re-record it"
            ) from None

    def best(self) -> ReplayRecord | None:
        """The OK record with the best recorded median in the objective's direction."""
        ok = [r for r in self.records if r.status == Status.OK and r.samples]
        if not ok:
            return None
        pick = min if self.objective.minimize else max
        return pick(ok, key=lambda r: median(r.samples))


class ReplayWorkload(BaseModel):
    """The replay target's workload: which table, how to add noise, and the noise seed."""

    model_config = ConfigDict(extra="forbid")
    table: str
    noise: Literal["resample", "none"] = "resample"
    seed: int = 0


def _recorded_choice(param: Param, records: list[ReplayRecord]) -> Param:
    """``param`` itself if its grid lists every value; else a choice over the values recorded for it."""
    if param.kind in ("bool", "choice", "pow2"):
        return param
    if param.kind == "int":
        count = (int(param.high) - int(param.low)) // (param.step or 1) + 1  # type: ignore[arg-type]
        if len(param.grid()) == count:
            return param
    seen = {r.config[param.name] for r in records if param.name in r.config}
    seen.add(param.default)
    data = param.model_dump()
    data.update(kind="choice", values=tuple(sorted(seen)), low=None, high=None, step=None)
    return Param.model_validate(data)


class ReplayTarget(Target):
    """A target that answers from a recorded sweep instead of running anything (``evaluate`` ignores the
    context's runner). A config the table does not hold measures as ``infrastructure`` with "no recording".
    """

    name = "replay"
    domain = "replay"
    workload_model = ReplayWorkload
    applies = ("arg", "env", "meta", "setting")  # nothing is applied: every recorded parameter is looked up

    def __init__(self, job) -> None:  # type: ignore[no-untyped-def]
        super().__init__(job)
        self._table: ReplayTable | None = None
        self._index: dict[str, ReplayRecord] | None = None
        self._calls: dict[str, int] = {}

    @property
    def table(self) -> ReplayTable:
        if self._table is None:
            self._table = ReplayTable.load(self.job.resolve(self.workload.table))
        return self._table

    @property
    def objective(self) -> Objective:
        """The objective the table was recorded with."""
        return self.table.objective

    def base_space(self) -> SearchSpace:
        params = tuple(_recorded_choice(p, self.table.records) for p in self.table.space.params)
        return SearchSpace(params=params, constraints=self.table.space.constraints)

    def _lookup(self) -> dict[str, ReplayRecord]:
        if self._index is None:
            space, index = self.space(), {}
            for record in self.table.records:
                try:
                    index[candidate_key(space.validate_config(record.config))] = record
                except JobError:
                    continue  # recorded outside the (possibly narrowed) space
            self._index = index
        return self._index

    def baseline(self) -> Candidate:
        config = self.space().validate_config({**self.table.baseline, **self.job.baseline}, where="baseline")
        return Candidate(config=config, origin="baseline", rationale="the default configuration")

    def preflight(self) -> None:
        recorded, job = self.table.objective, self.job.objective
        if (recorded.metric, recorded.direction) != (job.metric, job.direction):
            raise JobError(
                f"objective: the table was recorded to {recorded.direction} {recorded.metric}, "
                f"the job says {job.direction} {job.metric}",
                "make the job's [objective] match the table",
            )

    def rules(self) -> list[str]:
        names = self.space().names
        named = [r for r in self.table.rules if r in names]
        return named + [n for n in names if n not in named]

    def signature(self) -> str:
        return f"replay/{self.table.signature or self.table.target or Path(self.workload.table).stem}"

    def fingerprint(self) -> dict[str, Any]:
        return {**self.table.fingerprint, "replay": Path(self.workload.table).name}

    def evaluate(self, candidate: Candidate, ctx: TrialContext) -> Measurement:
        try:
            config = self.space().validate_config(candidate.config)
        except JobError as exc:
            return Measurement(status=Status.INFRASTRUCTURE, detail=f"no recording: {exc}")
        key = candidate_key(config, candidate.source)
        record = self._lookup().get(key)
        if record is None:
            return Measurement(status=Status.INFRASTRUCTURE, detail="no recording for this config")
        self._calls[key] = count = self._calls.get(key, 0) + 1
        common = {"metrics": dict(record.metrics), "fingerprint": self.fingerprint(), "wall_s": record.wall_s}
        if record.status != Status.OK or not record.samples:
            detail = record.detail or f"recorded {record.status.value} without samples"
            return Measurement(status=record.status, detail=detail, **common)
        if self.workload.noise == "none":
            samples = list(record.samples)
        else:
            rng = random.Random(f"{self.workload.seed}/{key}/{count}")
            samples = [rng.choice(record.samples) for _ in range(max(1, ctx.repeats))]
        return Measurement(
            status=Status.OK, samples=samples, detail="replayed from the recorded sweep", **common
        )


def record_sweep(
    target: Target,
    runner: Runner,
    workdir: Path,
    repeats: int,
    path: str | Path,
    *,
    points: int = 5,
    progress: Callable[[int, int, ReplayRecord], None] | None = None,
) -> ReplayTable:
    """Measure the baseline and every grid config of ``target`` and write the replay table to ``path``.

    Configs the target's ``check`` rejects are recorded as ``constraints`` without running. The caller
    owns the target's lifecycle (``preflight`` before, ``close`` after). The job's observers watch every
    config, so their metrics (``res.*``) are recorded with it.
    """
    space = target.space()
    baseline = target.baseline().config
    configs = [c for c in space.grid(points) if candidate_key(c) != candidate_key(baseline)]
    configs.insert(0, baseline)
    records: list[ReplayRecord] = []
    for i, config in enumerate(configs):
        candidate = Candidate(
            config=config, origin="baseline" if i == 0 else "sampler", rationale="exhaustive sweep"
        )
        reasons = target.check(candidate)
        if reasons:
            record = ReplayRecord(config=config, status=Status.CONSTRAINTS, detail="; ".join(reasons))
        else:
            scratch = Path(workdir) / f"{i:05d}-{candidate.key}"
            scratch.mkdir(parents=True, exist_ok=True)
            ctx = TrialContext.for_job(target.job, runner, scratch, repeats=repeats, trial=i)
            m = ctx.finish(target.evaluate(candidate, ctx))
            record = ReplayRecord(
                config=config,
                status=m.status,
                samples=m.samples,
                metrics=m.metrics,
                detail=m.detail,
                wall_s=m.wall_s,
            )
        records.append(record)
        if progress is not None:
            progress(i + 1, len(configs), record)
    table = ReplayTable(
        space=space,
        objective=target.job.objective,
        records=records,
        target=target.name,
        signature=target.signature(),
        rules=target.rules(),
        baseline=baseline,
        fingerprint=target.fingerprint(),
        repeats=repeats,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table.model_dump_json(indent=1), encoding="utf-8")
    return table
