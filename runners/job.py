"""The Job: what to tune, read from a TOML file with one-line validation errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import JobError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # NaN/inf limits are refused, not compared


class Objective(_Strict):
    """The metric to optimise and its direction; ``min_effect`` is the smallest gain worth claiming."""

    metric: str = "seconds"
    direction: Literal["minimize", "maximize"] = "minimize"
    min_effect: float = Field(0.02, ge=0, le=1)

    @property
    def minimize(self) -> bool:
        return self.direction == "minimize"


class Budget(_Strict):
    """Limits every strategy obeys: trials, wall time, LLM tokens (and GPU-seconds where timed)."""

    trials: int = Field(20, ge=1, le=100_000)
    wall_time_s: float = Field(3600, gt=0)
    llm_tokens: int = Field(200_000, ge=0)
    patience: int = Field(0, ge=0, description="stop after this many trials without a win (0 = never)")


class RunnerConfig(_Strict):
    """Where and how candidates run."""

    kind: str = "local"
    timeout_s: float = Field(300, gt=0)
    memory_mb: int = Field(8192, ge=64)
    nproc: int = Field(2, ge=1, le=1024)
    env: dict[str, str] = Field(default_factory=dict)
    # Secret variables (API keys, tokens) are not passed to workloads unless named here or set in ``env``.
    pass_env: list[str] = Field(default_factory=list)
    # How a batch of candidates runs (runners/executors.py): "serial" one at a time, "devices" one per device
    # at once (each sees only its own through CUDA_VISIBLE_DEVICES); devices: indexes, "0,1" groups or "auto".
    executor: str = "serial"
    devices: Any = "auto"  # "auto" or a list; checked with a one-line error by runners/executors.py


class StrategyConfig(_Strict):
    """Which strategy proposes candidates; ``batch`` is how many it proposes per round."""

    name: Literal["planner", "grid", "random", "tpe"] = "planner"
    seed: int = 0
    batch: int = Field(1, ge=1, le=64)


class MeasureConfig(_Strict):
    """How each candidate is measured: repeats per evaluation and whether wins are re-measured."""

    repeats: int = Field(3, ge=1, le=1000)
    remeasure: bool = True
    warmup: int = Field(0, ge=0, le=100, description="untimed runs before the timed repeats (command and checkpoint "
                        "targets; the Triton harness and the training script warm up inside each run)")
    # Observers attached to every trial (runners/observers): "resources" adds CPU time, peak RSS and disk traffic.
    observers: list[str] = Field(default_factory=lambda: ["resources"])


class LLMConfig(_Strict):
    """The LLM endpoint. The key is never stored: only the name of the environment variable holding it."""

    mode: Literal["auto", "off", "endpoint", "local"] = "auto"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    max_retries: int = Field(3, ge=0, le=10)


class ManualSpace(_Strict):
    """``[space] from_manual = "SOURCE"`` with ``select = [...]``: parameters taken from an ingested manual
    (resolved into ``[workload.params]`` by the knowledge layer before the target is built)."""

    source: str = Field(min_length=1)
    select: list[str] = Field(default_factory=list)
    knowledge_dir: str | None = None


class Job(_Strict):
    """What to tune: the target plugin and its workload, objective, space overrides, baseline, budget."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    target: str
    description: str = ""
    workload: dict[str, Any] = Field(default_factory=dict)
    objective: Objective = Field(default_factory=Objective)
    budget: Budget = Field(default_factory=Budget)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    measure: MeasureConfig = Field(default_factory=MeasureConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    space: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per-parameter overrides
    baseline: dict[str, Any] = Field(default_factory=dict)  # the default config; missing keys = defaults
    manual_space: ManualSpace | None = None  # from [space] from_manual/select (see parse_job)
    base_dir: Path = Field(default=Path("."), exclude=True)  # folder of the job file

    def resolve(self, path: str | Path) -> Path:
        """A workload path relative to the job file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def definition(self) -> dict[str, Any]:
        """The parts that define what is measured; a study refuses to resume if they change."""
        data = self.model_dump(include={"target", "workload", "objective", "space", "baseline", "measure"})
        data["runner"] = {"kind": self.runner.kind, "nproc": self.runner.nproc, "env": self.runner.env}
        # Passive observers (resources) do not change what is measured: only the others are hashed.
        from .observers import hashed_observers

        hashed = hashed_observers(data["measure"].pop("observers", []))
        data["measure"].update({"observers": hashed} if hashed else {})
        return data

    def definition_hash(self) -> str:
        blob = json.dumps(self.definition(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it (check the spelling)",
    "literal_error": "use one of the allowed values",
    "int_parsing": "write a whole number",
    "float_parsing": "write a number",
    "finite_number": "write a finite number",
    "greater_than_equal": "raise it",
    "greater_than": "raise it",
    "less_than_equal": "lower it",
    "string_pattern_mismatch": "use letters, digits, '_', '-' or '.' only",
}


def _one_line(exc: ValidationError, origin: str) -> JobError:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "required field is missing"
    fix = _FIXES.get(err["type"], "correct the value")
    if err["type"] == "literal_error":
        fix = msg.replace("Input should be", "use")
    return JobError(f"{origin}: {loc}: {msg}", fix)


def parse_job(data: dict[str, Any], *, base_dir: Path = Path("."), origin: str = "job") -> Job:
    space = data.get("space")
    if isinstance(space, dict) and {"from_manual", "select", "knowledge_dir"} & set(space):
        space = {k: v for k, v in space.items() if k not in ("from_manual", "select", "knowledge_dir")}
        raw = data["space"]
        data = {**data, "space": space, "manual_space": {"source": raw.get("from_manual"), "select": raw.get("select", []),
                                                          "knowledge_dir": raw.get("knowledge_dir")}}
    try:
        return Job.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        raise _one_line(exc, origin) from None


def load_job(path: str | Path) -> Job:
    """Read and validate a job file; every problem is one JobError line naming the field and the fix."""
    p = Path(path)
    if not p.exists():
        raise JobError(f"job file {str(p)!r} does not exist", "pass the path of a .toml job file (see examples/)")
    if p.is_dir():
        raise JobError(f"{str(p)!r} is a folder, not a job file", "pass the job's .toml file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise JobError(f"{p.name}: not valid TOML ({exc})", "fix the syntax at that line") from None
    except UnicodeDecodeError:
        raise JobError(f"{p.name}: not a text file", "pass a UTF-8 TOML job file") from None
    return parse_job(data, base_dir=p.resolve().parent, origin=p.name)
