"""A synthetic target with a known optimum, for testing the agent loop without hardware."""

from __future__ import annotations

import random
import zlib

from pydantic import BaseModel, ConfigDict

from tunesmith.runners.base import Target
from tunesmith.runners.context import TrialContext
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status


class SyntheticWorkload(BaseModel):
    """Noise level and which config fails."""

    model_config = ConfigDict(extra="forbid")
    noise: float = 0.01
    fail_mode: str = "c"


class SyntheticTarget(Target):
    """seconds = 1 / (threads * chunk_factor) + penalty; mode 'c' crashes; deterministic noise per call."""

    name = "synthetic"
    domain = "test"
    workload_model = SyntheticWorkload

    def __init__(self, job) -> None:  # noqa: ANN001
        super().__init__(job)
        self.calls = 0

    def base_space(self) -> SearchSpace:
        return SearchSpace(params=(
            Param(name="threads", kind="pow2", low=1, high=8, default=1, help="writer threads"),
            Param(name="chunk", kind="choice", values=(1, 4, 16), default=1, help="chunk size"),
            Param(name="mode", kind="choice", values=("a", "b", "c"), default="a", help="mode"),
        ))

    def evaluate(self, candidate: Candidate, ctx: TrialContext) -> Measurement:
        self.calls += 1
        cfg = candidate.config
        if cfg["mode"] == self.workload.fail_mode:
            return Measurement(status=Status.RUNTIME, detail="mode c crashes (exit 1)")
        base = 1.0 / (cfg["threads"] * {1: 1.0, 4: 1.5, 16: 1.8}[cfg["chunk"]]) + (0.05 if cfg["mode"] == "b" else 0)
        rng = random.Random(zlib.crc32(f"{candidate.key}:{self.calls}".encode()))
        return Measurement(status=Status.OK, samples=[base * (1 + rng.gauss(0, self.workload.noise)) for _ in range(ctx.repeats)])


def strong_last_table(noise: float = 0.02, seed: int = 0):  # noqa: ANN201 - a ReplayTable
    """A recorded-sweep-like table (192 configs) whose strongest knob is declared last.

    ``sync`` (declared last) is worth 8x; the four knobs before it are worth 3-15 % each. The best config
    is buffer=64, encode="csv", batch=8, prealloc=True, sync=64.
    """
    from tunesmith.runners.job import Objective
    from tunesmith.runners.replay.target import ReplayRecord, ReplayTable

    space = SearchSpace(params=(
        Param(name="buffer", kind="choice", values=(8, 64, 512), default=8),
        Param(name="encode", kind="choice", values=("json", "csv"), default="json"),
        Param(name="batch", kind="pow2", low=1, high=8, default=1),
        Param(name="prealloc", kind="bool", default=False),
        Param(name="sync", kind="choice", values=(1, 4, 16, 64), default=1),
    ))
    rng = random.Random(seed)
    records = []
    for config in space.grid():
        cost = {1: 8.0, 4: 2.5, 16: 1.4, 64: 1.0}[config["sync"]]
        cost *= {8: 1.05, 64: 1.0, 512: 1.03}[config["buffer"]]
        cost *= 1.0 if config["encode"] == "csv" else 1.15
        cost *= {1: 1.12, 2: 1.06, 4: 1.02, 8: 1.0}[config["batch"]]
        cost *= 1.0 if config["prealloc"] else 1.08
        samples = [cost * (1 + noise * rng.gauss(0, 1)) for _ in range(3)]
        records.append(ReplayRecord(config=config, samples=samples))
    return ReplayTable(space=space, objective=Objective(metric="seconds", direction="minimize"),
                       records=records, target="synthetic", signature="synthetic/strong-last",
                       baseline=space.defaults(), repeats=3)
