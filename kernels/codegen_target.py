"""The ``kernel`` target: generated Triton source for a KernelBench-format problem, tuned through the core's loop.

A job names a problem file (``class Model``, ``get_inputs()``, ``get_init_inputs()``, optionally
``get_small_inputs()``). The template planner (``tunesmith.kernels.generation.plan_kernel``) reads what
the reference computes and gives a ``KernelPlan``: its meta parameters are this target's search space and
``author`` renders a candidate's config into a full ``model_new.py`` (``Candidate.source``). Source an LLM
wrote instead is given as ``workload.source_file``; the space is then empty and that source runs as is.

Every candidate's source runs in a child process through the evaluator
(``tunesmith.kernels.evaluation.evaluate_source``): correctness on several seeds and input draws at strict
and loose tolerance, proof that the project's Triton kernels ran, and on a GPU timing against eager and
``torch.compile`` in the same session. Under the Triton interpreter (no GPU) only correctness is checked: the
measurement is ``ok`` with no samples, ``timing_available`` False and a detail that says so.
"""

from __future__ import annotations

import ast
import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tunesmith.runners.base import Target
from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import JobError
from tunesmith.runners.space import SearchSpace
from tunesmith.runners.stats import median
from tunesmith.runners.types import Candidate, Measurement, Status

if TYPE_CHECKING:
    from tunesmith.kernels.evaluation import KernelEvaluation
    from tunesmith.kernels.generation import KernelPlan

INTERPRETER_NOTE = "correctness only: no GPU, so no timing (the Triton interpreter runs the kernel on the CPU)"
TIMING_UNAVAILABLE = "timing unavailable: no GPU (correctness checked under the Triton interpreter)"
_STATUS = {"ok": Status.OK, "compile_error": Status.COMPILE, "runtime_error": Status.RUNTIME,
           "incorrect": Status.CORRECTNESS, "rejected": Status.CORRECTNESS, "timeout": Status.TIMEOUT}


class KernelGenWorkload(BaseModel):
    """The ``[workload]`` of a ``kernel`` job.

    ``small``: ``"auto"`` uses small shapes when no GPU is visible (the interpreter is slow): the problem's
    ``get_small_inputs()``, or ones derived from its shape constants (``tunesmith.kernels.small_inputs``). ``source_file``: a ``model_new.py`` written elsewhere (the LLM
    coder); without it the template planner must cover the problem.
    """

    model_config = ConfigDict(extra="forbid")
    problem: str
    small: Literal["auto"] | bool = "auto"
    source_file: str | None = None
    timeout_s: float = Field(300, gt=0, description="limit for one candidate's evaluation (child process)")


def declares_small_inputs(path: Path) -> bool:
    """Whether a problem file defines ``get_small_inputs`` at top level (read with ``ast``, never imported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    return any(isinstance(n, ast.FunctionDef) and n.name == "get_small_inputs" for n in tree.body)


def gpu_visible() -> bool:
    """Whether torch sees a CUDA device here (else kernels run under the Triton interpreter)."""
    import torch

    return bool(torch.cuda.is_available())


class KernelGenTarget(Target):
    """Generated kernels for one problem: template meta parameters (or one fixed LLM-written source)."""

    name = "kernel"
    domain = "kernel"
    workload_model = KernelGenWorkload
    default_metric = "ms"
    applies = ("meta",)

    @property
    def w(self) -> KernelGenWorkload:
        return self.workload  # type: ignore[return-value]

    @cached_property
    def problem(self) -> Path:
        return self.job.resolve(self.w.problem)

    @cached_property
    def small(self) -> bool:
        if self.w.small != "auto":
            return bool(self.w.small)
        return not gpu_visible()  # without get_small_inputs(), kernels/small_inputs.py derives them

    @cached_property
    def fixed_source(self) -> str | None:
        if self.w.source_file is None:
            return None
        path = self.job.resolve(self.w.source_file)
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise JobError(f"workload.source_file: cannot read {str(path)!r} ({exc})",
                           "give a readable model_new.py") from None

    @cached_property
    def plan(self) -> KernelPlan | None:
        """The template plan (None when a fixed source is given and no template covers the problem)."""
        from tunesmith.kernels.generation import NeedsLLM, plan_kernel

        if not self.problem.is_file():
            raise JobError(f"workload.problem: {str(self.problem)!r} does not exist",
                           "give a KernelBench-format .py file (class Model, get_inputs, get_init_inputs)")
        plan = plan_kernel(self.problem, small=self.small)
        if isinstance(plan, NeedsLLM):
            if self.w.source_file is not None:
                return None
            raise JobError(plan.reason, "run `tune kernel PROBLEM.py --llm local` (or an endpoint)")
        return plan

    def preflight(self) -> None:
        """The problem exists and is covered (or a source is given): both are read once, here."""
        _ = self.plan, self.fixed_source

    # -- what to search ---------------------------------------------------------------------------
    def base_space(self) -> SearchSpace:
        if self.fixed_source is not None or self.plan is None:
            return SearchSpace(params=())
        return self.plan.space()

    def author(self, candidate: Candidate) -> Candidate:
        """The candidate with its source: the template rendered at its config, or the fixed source."""
        if self.fixed_source is not None:
            source = self.fixed_source
        else:
            assert self.plan is not None
            source = self.plan.render(dict(candidate.config))
        return Candidate.model_validate({**candidate.model_dump(exclude={"key"}), "source": source})

    # -- running a candidate ----------------------------------------------------------------------
    def evaluate(self, candidate: Candidate, ctx: TrialContext) -> Measurement:
        from tunesmith.kernels.evaluation import evaluate_source

        source = candidate.source if candidate.source is not None else self.author(candidate).source or ""
        workdir = ctx.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "model_new.py").write_text(source, encoding="utf-8")
        timeout = min(self.w.timeout_s, ctx.timeout_s)
        ev = evaluate_source(self.problem, source, scratch=workdir, small=self.small, timeout_s=timeout,
                             memory_mb=ctx.memory_mb, ctx=ctx)
        (workdir / "evaluation.json").write_text(ev.model_dump_json(indent=1), encoding="utf-8")
        m = evaluation_to_measurement(ev)
        m.fingerprint = {**self.fingerprint(), "triton_interpret": not m.timing_available}
        m.artifacts = {"source": str(workdir / "model_new.py"), "evaluation": str(workdir / "evaluation.json")}
        return m

    # -- what to tell the agents ------------------------------------------------------------------
    def signature(self) -> str:
        ops = ",".join(map(str, (self.plan.signature.get("ops", []) if self.plan else [])))[:120]
        return f"kernel/kernel {self.problem.stem} ops={ops or 'llm-written'}"

    def describe(self) -> str:
        what = self.plan.pattern if self.plan is not None else "an LLM-written kernel (no template parameters)"
        return f"generated Triton kernel for {self.problem.name}: {what}\n" + super().describe()


def evaluation_to_measurement(ev: KernelEvaluation) -> Measurement:
    """Map the evaluator's verdict to the core's measurement.

    ``ok`` with timing gives the candidate's samples (ms) and same-session speedups; ``ok`` without timing
    (the interpreter) is a correct, untimed measurement that says so; every other status is a failure of the
    fixed taxonomy with the evaluator's one-line detail (a rejected cheat is a ``correctness`` failure).
    """
    status = _STATUS.get(ev.status, Status.RUNTIME)
    metrics: dict[str, float] = {"strict_pass": float(ev.strict_ok), "loose_pass": float(ev.loose_ok)}
    if ev.max_abs_err is not None:
        metrics["max_abs_err"] = float(ev.max_abs_err)
    for key, value in (ev.metrics or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[f"ev.{key}"] = float(value)
    detail = ev.detail or ev.status
    if ev.status == "rejected":
        detail = f"rejected by the evaluator: {detail}"
    samples: list[float] = []
    timing = ev.timing or {}
    if status == Status.OK and timing:
        samples = timing_samples(timing.get("candidate") or {})
        for name, key in (("eager", "eager"), ("compiled", "compile")):
            ref = timing.get(key) or {}
            value = ref.get("median_ms", ref.get("median"))
            if isinstance(value, (int, float)):
                metrics[f"{name}_ms"] = float(value)
        for name, key in (("speedup_vs_eager", "speedup_eager"), ("speedup_vs_compiled", "speedup_compile")):
            if isinstance(timing.get(key), (int, float)):
                metrics[name] = float(timing[key])
        if samples:
            detail = (f"{median(samples):.4g} ms median of {len(samples)} samples"
                      + "".join(f"; {n} {metrics[k]:.2f}x" for n, k in (("vs eager", "speedup_vs_eager"),
                                ("vs torch.compile", "speedup_vs_compiled")) if k in metrics))
    elif status == Status.OK:
        detail = INTERPRETER_NOTE + (" (strict tolerance)" if ev.strict_ok else " (loose tolerance only)")
    return Measurement(status=status, samples=samples, metrics=metrics, detail=detail[:500],
                       timing_available=bool(samples))


def timing_samples(cand: dict[str, Any]) -> list[float]:
    """The candidate's timed samples in ms: the raw list where the evaluator gives one, else its median."""
    for key in ("samples_ms", "samples"):
        raw = cand.get(key)
        if isinstance(raw, list) and raw:
            return [float(x) for x in raw]
    med = cand.get("median_ms", cand.get("median"))
    return [float(med)] if isinstance(med, (int, float)) else []


def evaluation_summary(ev: KernelEvaluation) -> dict[str, Any]:
    """The evaluator's verdict as JSON-able evidence for the kernel library."""
    data = json.loads(ev.model_dump_json())
    data["timing_note"] = None if ev.timing else TIMING_UNAVAILABLE
    return data
