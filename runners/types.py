"""Core records that cross every boundary: candidates, measurements, trials, verdicts, reflections."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, computed_field, field_validator

from .secrets import redact
from .space import Value
from .stats import iqr, median


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Status(str, Enum):
    """The fixed failure taxonomy of a measurement."""

    OK = "ok"
    COMPILE = "compile"  # the candidate did not build (Triton compile error, torch.compile failure)
    RUNTIME = "runtime"  # it crashed, ran out of memory or exited non-zero
    TIMEOUT = "timeout"  # it exceeded the wall-time limit and its process group was killed
    CORRECTNESS = "correctness"  # it ran but produced wrong results
    CONSTRAINTS = "constraints"  # rejected before running (space constraint, predicted not to fit)
    INFRASTRUCTURE = "infrastructure"  # the runner/machine failed, not the candidate


REDACTED = "redacted"  # validation context flag: ``{REDACTED: True}`` says the text was redacted when stored

Origin = Literal["baseline", "planner", "sampler", "user", "remeasure", "coder", "final"]  # final: the end-of-study re-measure


class Candidate(BaseModel):
    """One thing to try: a config and/or source code, where it came from and why.

    ``key`` is a stable hash of (config, source): equal candidates share it, so a study never runs the
    same thing twice and the store can dedupe and cache.
    """

    model_config = ConfigDict(frozen=True)
    config: dict[str, Value]
    source: str | None = None  # kernel source text for code candidates (kernel generation)
    origin: Origin = "sampler"
    rationale: str = ""

    @field_validator("rationale")
    @classmethod
    def _redacted(cls, value: str, info: ValidationInfo) -> str:
        if info.context and info.context.get(REDACTED):
            return value  # read back from the store, which redacted it on write
        return redact(value)  # LLM text: a key it echoes must not reach checkpoints, the store or reports

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        return candidate_key(self.config, self.source)


def candidate_key(config: dict[str, Any], source: str | None = None) -> str:
    blob = json.dumps({"config": config, "source": source}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Measurement(BaseModel):
    """What one evaluation produced: status, raw samples of the objective metric and their summary.

    ``samples`` are in the unit of the job's objective metric (e.g. seconds, ms, tokens/s).
    ``metrics`` holds other numbers (MB/s, peak memory, baselines timed in the same session); observers
    add theirs under a prefix (``res.cpu_s``) and their one-line findings to ``notes``.
    ``fingerprint`` identifies the environment; results are never compared across fingerprints.
    """

    status: Status
    samples: list[float] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    detail: str = ""  # one line: why it failed, or what was measured
    stdout_tail: str = ""
    stderr_tail: str = ""
    artifacts: dict[str, str] = Field(default_factory=dict)  # name -> path (profiles, logs)
    notes: list[str] = Field(default_factory=list)  # one-line observations (observers: resource use, profiles)
    fingerprint: dict[str, Any] = Field(default_factory=dict)
    timing_available: bool = True  # False e.g. under the Triton interpreter (correctness only)
    wall_s: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def median(self) -> float | None:
        return median(self.samples) if self.samples else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def iqr(self) -> float | None:
        return iqr(self.samples) if self.samples else None

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


class TrialState(str, Enum):
    """Lifecycle of a trial in the study store."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Verdict(str, Enum):
    """The judge's decision about a trial, computed from statistics."""

    BETTER = "better"
    WORSE = "worse"
    NOISE = "noise"
    INVALID = "invalid"
    BASELINE = "baseline"


class Trial(BaseModel):
    """A candidate and its measurement inside a study."""

    id: int | None = None
    study: str
    number: int
    candidate: Candidate
    state: TrialState = TrialState.QUEUED
    measurement: Measurement | None = None
    verdict: Verdict | None = None
    explanation: str = ""
    interrupted: bool = False  # its run was cut short (killed process, Ctrl-C): retried, never judged
    started_at: str | None = None
    finished_at: str | None = None


class Reflection(BaseModel):
    """A lesson learned: where it came from, what it says, the trials that prove it, how sure we are."""

    study: str
    workload: str  # workload signature, e.g. "io/checkpoint size=256MB fs=ext4"
    hardware: str
    insight: str
    evidence: list[int] = Field(default_factory=list)  # trial numbers
    effect: float | None = None  # measured relative change of the objective (+0.25 = 25 % better)
    confidence: float = 0.5
    author: Literal["llm", "template"] = "template"
    created_at: str = Field(default_factory=utcnow)
