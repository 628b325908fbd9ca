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
