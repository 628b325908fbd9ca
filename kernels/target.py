"""The ``triton_config`` target: tune an existing Triton kernel's tile sizes, num_warps and num_stages.

The user's Python file holds the kernel, a launcher ``launcher(*inputs, **config)`` returning a new
tensor, a PyTorch ``reference(*inputs)`` and an input maker ``make_inputs(seed, device)``. The maker is
called with ``device="cpu"`` under the Triton interpreter (no GPU: return a small shape, every candidate
then takes seconds) and ``device="cuda"`` on a GPU (return the shape worth tuning).

Each candidate runs in a fresh worker (``python -m tunesmith.kernels.harness spec.json``) through the
job's runner: correctness against the reference on several seeds plus signed and heavy-tailed inputs,
then, on a GPU, interleaved CUDA-event timing of candidate, baseline config and eager reference per
docs/measuring.md. The user's file is never imported into the tuner: ``preflight`` reads it with ``ast``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import sys
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from tunesmith.runners.base import RESULT_ENV, RunResult, Target
from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import JobError
from tunesmith.runners.outcome import classify_run
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.stats import median
from tunesmith.runners.types import Candidate, Measurement, Status

INTERPRET_DETAIL = "correctness only: no GPU, timing unavailable under the Triton interpreter"
MAX_TILE_NUMEL = 1 << 20  # Triton refuses a block of more than 2**20 elements
_RESERVED = {"num_warps", "num_stages"}


class TritonWorkload(BaseModel):
    """The ``[workload]`` of a triton_config job.

    ``tile_params`` maps a launcher keyword to Param fields (kind defaults to ``pow2``), e.g.
    ``BLOCK_SIZE = {low = 64, high = 8192, default = 1024}``. ``interpret``: ``"auto"`` runs under the
    Triton interpreter iff the worker sees no CUDA device. ``variants`` are the extra input draws
    (``signed``, ``heavy_tailed``) of the maker's shapes; drop one only where it is meaningless for the op.
    """

    model_config = ConfigDict(extra="forbid")
    module: str
    launcher: str
    reference: str = "reference"
    inputs: str = "make_inputs"
    tile_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    num_warps: list[int] = Field(default_factory=lambda: [1, 2, 4, 8, 16], min_length=1)
    num_stages: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)
    constraints: list[str] = Field(default_factory=list)
    rtol: float = Field(1e-2, ge=0)
    atol: float = Field(1e-4, ge=0)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1, max_length=32)
    variants: list[Literal["signed", "heavy_tailed"]] = Field(
        default_factory=lambda: ["signed", "heavy_tailed"]
    )
    interpret: Literal["auto"] | bool = "auto"
    compile_baseline: bool = False
    allow_tf32: bool = False
    pool: int = Field(3, ge=1, le=16, description="input sets cycled through timed calls (fresh inputs)")
    peak_bandwidth_gbs: float | None = Field(None, gt=0)

    @field_validator("num_warps", "num_stages")
    @classmethod
    def _launch_values(cls, v: list[int], info: ValidationInfo) -> list[int]:
        if info.field_name == "num_warps" and any(w < 1 or w & (w - 1) for w in v):
            raise ValueError(f"num_warps must be powers of two, got {v}")
        if min(v) < 1:
            raise ValueError(f"{info.field_name} must be at least 1")
        return sorted(set(v))

    @field_validator("tile_params")
    @classmethod
    def _tiles(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, fields in v.items():
            if not name.isidentifier() or name in _RESERVED:
                raise ValueError(
                    f"tile parameter {name!r} must be a launcher keyword other than num_warps/num_stages"
                )
            if {"name", "apply"} & set(fields):
                raise ValueError(f"tile parameter {name!r}: 'name' and 'apply' are set by the target")
            try:
                _tile_param(name, fields)
            except ValidationError as exc:
                raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return v


def _tile_param(name: str, fields: dict[str, Any]) -> Param:
    data = {"kind": "pow2", "help": f"tile size {name} (a launcher keyword)", **fields}
    return Param(name=name, apply="meta", **data)


def _choice(name: str, values: list[int], preferred: int, help: str) -> Param:
    default = preferred if preferred in values else values[0]
    return Param(name=name, kind="choice", values=tuple(values), default=default, apply="meta", help=help)


class TritonConfigTarget(Target):
    """Tunes the launch configuration of an existing Triton kernel (tile sizes, num_warps, num_stages)."""

    name = "triton_config"
    domain = "kernel"
    workload_model = TritonWorkload
    default_metric = "ms"
    applies = ("meta",)  # every knob is a launcher keyword or launch option

    @property
    def w(self) -> TritonWorkload:
        return self.workload  # type: ignore[return-value]

    @cached_property
    def module_path(self) -> Path:
        return self.job.resolve(self.w.module)

    def base_space(self) -> SearchSpace:
        params = [_tile_param(n, f) for n, f in self.w.tile_params.items()]
        params.append(_choice("num_warps", self.w.num_warps, 4, "warps per program (32 threads each)"))
        params.append(_choice("num_stages", self.w.num_stages, 3, "software-pipelining stages of loops"))
        return SearchSpace(params=tuple(params), constraints=tuple(self.w.constraints))

    def check(self, candidate: Candidate) -> list[str]:
        numel = math.prod(int(candidate.config.get(name, 1)) for name in self.w.tile_params)
        if numel > MAX_TILE_NUMEL:
            return [f"the tile holds {numel} elements, more than Triton's limit of {MAX_TILE_NUMEL}"]
        return []

    # -- before anything runs ---------------------------------------------------------------------
    def preflight(self) -> None:
        """The file exists and parses, defines the three names, the launcher takes the tuned keywords."""
        path = self.module_path
        if not path.is_file():
            raise JobError(f"workload.module: {str(path)!r} does not exist", "give the kernel's .py file")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            raise JobError(f"{path.name}:{exc.lineno}: {exc.msg}", "fix the kernel file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise JobError(f"cannot read {path.name}: {exc}", "give a readable UTF-8 Python file") from None
        defs = _top_level_names(tree)
        for field in ("launcher", "reference", "inputs"):
            fname = getattr(self.w, field)
            if fname not in defs:
                raise JobError(
                    f"{path.name} defines no {fname!r} (workload.{field})", "define it or fix the name"
                )
        fn = defs[self.w.launcher]
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.args.kwarg is None:
            accepted = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
            missing = [k for k in self.space().names if k not in accepted]
            if missing:
                key = missing[0]
                raise JobError(f"{self.w.launcher}() takes no keyword {key!r}", f"add {key} to its arguments")
        for dep in ("triton", "torch"):
            if importlib.util.find_spec(dep) is None:
                raise JobError(f"{dep} is not installed", f"pip install {dep} (see README)")

    # -- running a candidate ----------------------------------------------------------------------
    def harness_spec(self, candidate: Candidate, repeats: int) -> dict[str, Any]:
        """The JSON the worker reads: what to import, the configs, tolerances, seeds and timing settings."""
        passed = {"launcher", "reference", "inputs", "rtol", "atol", "seeds", "variants", "interpret"}
        passed |= {"allow_tf32", "pool", "compile_baseline", "peak_bandwidth_gbs"}
        return {
            **self.w.model_dump(include=passed),
            "module": str(self.module_path),
            "config": dict(candidate.config),
            "baseline_config": dict(self.baseline().config),
            "samples": repeats,
            "min_ms": 100.0,
            "result_env": RESULT_ENV,
        }

    def interpreting(self) -> bool:
        """Whether this machine would run the kernel under the Triton interpreter."""
        if self.w.interpret != "auto":
            return bool(self.w.interpret)
        import torch

        return not torch.cuda.is_available()

    def evaluate(self, candidate: Candidate, ctx: TrialContext) -> Measurement:
        workdir = ctx.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        spec_path = workdir / "spec.json"
        spec_path.write_text(json.dumps(self.harness_spec(candidate, ctx.repeats), indent=1), encoding="utf-8")
        env = {"TRITON_INTERPRET": "1" if self.interpreting() else "0"}
        argv = [sys.executable, "-m", "tunesmith.kernels.harness", str(spec_path)]
        spec = ctx.spec(argv, cwd=workdir, env=env, nproc=1)  # warm-up and samples happen inside the worker
        run = ctx.run(spec, label="harness")
        m = to_measurement(run, timeout_s=spec.timeout_s, memory_mb=spec.memory_mb, result_path=spec.result_path)
        interpreted = (run.result or {}).get("interpret", env["TRITON_INTERPRET"] == "1")
        m.fingerprint = {**self.fingerprint(), "triton_interpret": bool(interpreted)}
        # The full worker result (GPU name, dtypes, TF32 flags, clocks, per-case errors) stays on disk.
        m.artifacts = {"spec": str(spec_path)}
        if (workdir / "result.json").is_file():
            m.artifacts["result"] = str(workdir / "result.json")
        return m

    # -- what to tell the agents ------------------------------------------------------------------
    def signature(self) -> str:
        tiles = ",".join(self.w.tile_params) or "none"
        return f"kernel/triton_config {self.module_path.stem}:{self.w.launcher} tiles={tiles}"

    def describe(self) -> str:
        mode = "Triton interpreter (correctness only)" if self.interpreting() else "GPU (timed)"
        head = (
            f"Triton kernel launcher {self.w.launcher} in {self.module_path.name}, checked against "
            f"{self.w.reference} at rtol={self.w.rtol} atol={self.w.atol}; runs on the {mode}."
        )
        return head + "\n" + super().describe()

    def rules(self) -> list[str]:
        """Tile sizes first (they set work per program), then warps, then pipelining stages."""
        names = self.space().names
        return [n for n in names if n in self.w.tile_params] + [
            n for n in ("num_warps", "num_stages") if n in names
        ]


def _top_level_names(tree: ast.Module) -> dict[str, ast.AST]:
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update({t.id: node for t in targets if isinstance(t, ast.Name)})
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update({(a.asname or a.name).split(".")[0]: node for a in node.names})
    return names


_SCALARS = (
    "compile_ms",
    "max_abs_err",
    "sol_ms",
    "torch_compile_build_ms",
    "bytes_moved",
    "peak_bandwidth_gbs",
)
_BASELINES = {
    "baseline": "baseline_samples_ms",
    "eager": "eager_samples_ms",
    "compiled": "compiled_samples_ms",
}


def _timing_metrics(res: dict[str, Any], samples: list[float], metrics: dict[str, float]) -> str:
    """Add same-session medians and speedups (clamped at the speed-of-light bound); return a summary."""
    cand = median(samples)
    bounded = max(cand, metrics.get("sol_ms", 0.0))
    parts = [f"{cand:.4g} ms median of {len(samples)} samples"]
    for name, key in _BASELINES.items():
        if res.get(key):
            ref = median([float(x) for x in res[key]])
            metrics[f"{name}_ms"] = ref
            metrics[f"speedup_vs_{name}"] = ref / bounded if bounded > 0 else 0.0
            parts.append(f"{name} {ref:.4g} ms")
    if res.get("host_samples_ms"):
        metrics["host_ms"] = median([float(x) for x in res["host_samples_ms"]])
    metrics["faster_than_light"] = float(cand < metrics.get("sol_ms", 0.0))
    for key, value in (res.get("gpu_before") or {}).items():
        if isinstance(value, (int, float)):
            metrics[key] = float(value)
    return "; ".join(parts) + " (interleaved, one session)"


def to_measurement(
    run: RunResult, *, timeout_s: float | None = None, memory_mb: int | None = None, result_path: Path | None = None
) -> Measurement:
    """Map the worker's run and result JSON to a Measurement (runner failures first, then the verdict).

    The worker always exits 0 with the candidate's status in its result; anything else is the run's own
    failure, mapped by ``classify_run``.
    """
    tails = {"stdout_tail": run.stdout_tail, "stderr_tail": run.stderr_tail, "wall_s": run.wall_s}
    failure = classify_run(
        run, timeout_s=timeout_s, memory_mb=memory_mb, result_path=result_path, what="the kernel worker"
    )
    if failure is not None:
        return Measurement(status=failure[0], detail=failure[1], **tails)
    res = run.result or {}
    try:
        status = Status(res.get("status", "runtime"))
    except ValueError:
        status = Status.INFRASTRUCTURE
        res = {**res, "detail": f"the worker reported an unknown status {res.get('status')!r}"}
    timed = bool(res.get("timing_available")) and status == Status.OK
    metrics = {k: float(res[k]) for k in _SCALARS if isinstance(res.get(k), (int, float))}
    if isinstance(res.get("strict_pass"), bool):
        metrics["strict_pass"] = float(res["strict_pass"])
    samples = [float(x) for x in res.get("samples_ms", [])] if timed else []
    detail = str(res.get("detail", "")) or status.value
    if samples:
        detail = _timing_metrics(res, samples, metrics)
    elif status == Status.OK:
        detail, timed = (
            INTERPRET_DETAIL if res.get("interpret", True) else "timing produced no samples",
            False,
        )
    flags = [str(f) for f in res.get("flags", [])]
    if metrics.get("speedup_vs_eager", 0.0) > 10:
        flags.append(f"speedup {metrics['speedup_vs_eager']:.1f}x over eager: check before believing it")
    if flags:
        detail += " [" + "; ".join(flags) + "]"
    return Measurement(
        status=status, samples=samples, metrics=metrics, detail=detail, timing_available=timed, **tails
    )
