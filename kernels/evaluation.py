"""Evaluate generated kernel source (a ``model_new.py`` defining ``ModelNew``) against a KernelBench problem.

``evaluate_source`` is the evaluator that the kernel-generation loop trusts, built so that a kernel cannot
pass by cheating (docs/measuring.md lists the tricks and the defence for each):

1. Static proof of work (``proof.static_findings``): the source is read with ``ast``, never imported here.
2. The reference runs in this (trusted) process (``reference.build_reference``): five seeds of the input
   maker plus signed and heavy-tailed redraws; its outputs never leave this process.
3. The candidate runs in a child process through the project's runner (``python -m
   tunesmith.kernels.harness`` in generated mode, with the runner's time and memory limits), which
   refuses on the spot what it can see there (patched functions, threads, modified inputs, outputs that
   are not plain tensors or alias an input) and records a trace of what ran.
4. Here: the trace (``runners.observers.kernel_trace.analyse``), the repeat of case 0 under another memory
   state, then every case at the strict and the loose tolerance.
5. On a GPU: timing of candidate, eager and ``torch.compile`` reference interleaved in one fresh child,
   its timed outputs checked here too, a speed-of-light bound, and Nsight Compute where it is usable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field

from tunesmith.runners.base import RESULT_ENV
from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import InfrastructureError
from tunesmith.runners.observers.kernel_trace import analyse
from tunesmith.runners.outcome import classify_run
from tunesmith.runners.types import Status

from . import correctness, proof, reference
from .evaluation_timing import run_timing

INTERPRET_NOTE = "timing unavailable: no GPU, the kernel ran under the Triton interpreter (correctness only)"
WORKER_ENV = {"MALLOC_PERTURB_": "17", "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}  # freed memory is garbage
StatusName = Literal["ok", "compile_error", "runtime_error", "incorrect", "rejected", "timeout"]


class KernelEvaluation(BaseModel):
    """The verdict on one generated kernel (see docs/measuring.md for what each status means)."""

    status: StatusName
    detail: str  # one line: the first error line, the failing check, or the cheat found
    strict_ok: bool = False  # every case within the strict tolerance (1e-4 for fp32)
    loose_ok: bool = False  # every case within the loose tolerance (1e-2)
    max_abs_err: float | None = None
    timing: dict[str, Any] | None = None  # GPU only; None under the interpreter (``detail`` says so)
    proof: dict[str, Any] = Field(default_factory=dict)  # static findings, kernels defined and run, trace
    metrics: dict[str, float] = Field(default_factory=dict)  # numeric extras (ncu metrics, sol_ms, ...)
    summary: str = ""  # a few lines for a judge: timings and the Nsight Compute digest where available


def _context(ctx: TrialContext | None, scratch: Path, timeout_s: float, memory_mb: int | None) -> TrialContext:
    if ctx is not None:
        return ctx
    from tunesmith.runners.local import LocalRunner

    return TrialContext(runner=LocalRunner(), workdir=scratch, timeout_s=timeout_s, memory_mb=memory_mb)


def run_worker(c: TrialContext, scratch: Path, phase: str, interpret: bool, timeout_s: float,
               memory_mb: int | None, **extra: Any) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """Run one harness phase in a child; returns (its result, or a (status, detail) failure of the run)."""
    spec = {"mode": "generated", "phase": phase, "source": str(scratch / "model_new.py"),
            "cases": str(scratch / "cases.pt"), "out": str(scratch / f"{phase}_out.pt"),
            "interpret": interpret, "result_env": RESULT_ENV, **extra}
    spec_path = scratch / f"{phase}.json"
    spec_path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    env = {**WORKER_ENV, "TRITON_INTERPRET": "1" if interpret else "0"}
    if phase == "profile":
        env["TUNESMITH_NCU_PROFILE"] = "1"
    argv = [sys.executable, "-m", "tunesmith.kernels.harness", str(spec_path)]
    run_spec = c.spec(argv, cwd=scratch, env=env, timeout_s=timeout_s, memory_mb=memory_mb, nproc=1)
    result = c.run(run_spec, label=f"kernel {phase}")
    failure = classify_run(result, timeout_s=timeout_s, memory_mb=memory_mb, result_path=run_spec.result_path,
                           what="the kernel worker")
    if failure is not None:
        status, detail = failure
        if status == Status.INFRASTRUCTURE:
            raise InfrastructureError(detail, "check the Python environment the kernel worker runs in")
        return None, ("timeout" if status == Status.TIMEOUT else "runtime_error", detail)
    res = result.result or {}
    if res.get("status") == "infrastructure":
        raise InfrastructureError(str(res.get("detail")), "check the device and the problem file")
    return res, None


def _compare(ref: reference.ProblemReference, outputs: list[list[torch.Tensor]], repeat: list[torch.Tensor],
             require_strict: bool) -> tuple[str, str, dict[str, Any]]:
    """(status, detail, stats) from the worker's outputs and the reference's."""
    stats: dict[str, Any] = {"strict_ok": True, "loose_ok": True, "max_abs_err": 0.0, "cases": []}
    first = correctness.check_generated(repeat, outputs[0])
    if not first.strict_ok and (not first.problem or "differs" in first.problem):  # same shape, other values
        stats.update(strict_ok=False, loose_ok=False)
        return "incorrect", (f"{ref.cases[0].name}: output changed between two runs with different memory state "
                             "(reads uninitialised memory, or a race)"), stats
    problem, strict_case = "", ""
    for i, case in enumerate(ref.cases):
        chk = correctness.check_generated(outputs[i], ref.expected[i])
        stats["max_abs_err"] = max(stats["max_abs_err"], chk.max_abs_err)
        stats["strict_ok"] &= chk.strict_ok
        stats["loose_ok"] &= chk.loose_ok
        stats["cases"].append({"name": case.name, "max_abs_err": chk.max_abs_err, "strict_ok": chk.strict_ok,
                               "loose_ok": chk.loose_ok})
        if chk.problem and not problem:
            problem = f"{case.name}: {chk.problem}"
            stale = [j for j in range(i) if correctness.same_values(outputs[i], outputs[j])
                     and not correctness.same_values(ref.expected[i], ref.expected[j])]
            if stale:
                problem = f"{case.name}: returned the output of an earlier call ({ref.cases[stale[0]].name}): " \
                          "a stale or cached result"
            elif case.name.startswith(("signed", "heavy")) and all(c["loose_ok"] for c in stats["cases"][:-1]):
                problem += " (correct on the input maker's draws only: it relies on their value distribution)"
        elif not chk.strict_ok and not strict_case:
            strict_case = case.name
    if problem:
        return "incorrect", problem, stats
    if strict_case and require_strict:
        err = next(c["max_abs_err"] for c in stats["cases"] if c["name"] == strict_case)
        return "incorrect", (f"{strict_case}: within the loose tolerance only, not the strict one (max abs error "
                             f"{err:.3g}): lower precision than the reference?"), stats
    return "ok", "", stats


def _load_outputs(path: Path, cases: int) -> dict[str, Any] | str:
    """The worker's saved outputs (plain tensors only: ``weights_only``), or why they are unusable."""
    try:
        saved = torch.load(path, weights_only=True)
        outputs, repeat = saved["outputs"], saved["repeat"]
    except Exception as exc:  # noqa: BLE001 - a missing or damaged file, whatever the reason
        return f"the worker's outputs could not be read: {type(exc).__name__}: {exc}"[:300]
    tensors = [t for case in [*outputs, repeat] for t in case]
    if len(outputs) != cases or not all(type(t) is torch.Tensor for t in tensors):
        return f"the worker saved outputs for {len(outputs)} of {cases} cases, or objects that are not tensors"
    return saved


def evaluate_source(problem: Path, source: str, *, scratch: Path, small: bool = False, timing: bool | None = None,
                    timeout_s: float = 300, memory_mb: int | None = None, ctx: TrialContext | None = None,
                    require_strict: bool = True) -> KernelEvaluation:
    """Check generated ``source`` against ``problem``; on a GPU also time it (see the module docstring).

    ``require_strict=False`` accepts a kernel within the loose tolerance only (``strict_ok`` still says).
    Raises JobError for a broken problem file and InfrastructureError when the worker cannot run at all.
    """
    problem, scratch = Path(problem).resolve(), Path(scratch).resolve()  # the worker runs in another folder
    scratch.mkdir(parents=True, exist_ok=True)
    problem_source = problem.read_text(encoding="utf-8") if problem.is_file() else ""
    try:
        findings = proof.static_findings(source, problem_source)
    except SyntaxError as exc:
        return KernelEvaluation(status="compile_error", detail=f"model_new.py:{exc.lineno}: {exc.msg}")
    kernels = proof.defined_kernels(source)
    proof_d: dict[str, Any] = {"static": findings, "kernels_defined": kernels}
    if findings:
        status = "compile_error" if findings[0] == "defines no class ModelNew" else "rejected"
        return KernelEvaluation(status=status, detail=f"static check: {findings[0]}", proof=proof_d)
    gpu = torch.cuda.is_available()
    timed = gpu if timing is None else bool(timing) and gpu
    ref = reference.build_reference(problem, small=small, pool=timed)
    (scratch / "model_new.py").write_text(source, encoding="utf-8")
    reference.save_inputs(ref, scratch / "cases.pt")
    if memory_mb is None:
        memory_mb = ctx.memory_mb if ctx is not None else 8192
    c = _context(ctx, scratch, timeout_s, memory_mb)
    try:
        res, failure = run_worker(c, scratch, "check", not gpu, timeout_s, memory_mb)
        if failure is not None:
            return KernelEvaluation(status=failure[0], detail=failure[1], proof=proof_d)
        assert res is not None
        proof_d.update(analyse(res.get("trace") or {}, kernels, set(ref.ops)))
        res["proof"] = proof_d  # the kernel_trace observer reads it from the run's result
        if res.get("status") != "ok":
            return KernelEvaluation(status=res["status"], detail=str(res.get("detail", ""))[:400], proof=proof_d)
        if proof_d["findings"]:
            return KernelEvaluation(status="rejected", detail=proof_d["findings"][0], proof=proof_d)
        saved = _load_outputs(scratch / "check_out.pt", len(ref.cases))
        if isinstance(saved, str):
            return KernelEvaluation(status="runtime_error", detail=saved, proof=proof_d)
        status, detail, stats = _compare(ref, saved["outputs"], saved["repeat"], require_strict)
        out = KernelEvaluation(status=status, detail=detail, strict_ok=stats["strict_ok"], loose_ok=stats["loose_ok"],
                               max_abs_err=stats["max_abs_err"], proof=proof_d)
        out.metrics["cases"] = float(len(ref.cases))
        if status != "ok":
            return out
        ran = ", ".join(proof_d["triton_kernels"])
        out.detail = f"correct on {len(ref.cases)} cases ({'strict' if out.strict_ok else 'loose'}); {ran} ran"
        if not timed:
            out.detail += f"; {INTERPRET_NOTE if not gpu else 'timing not asked for'}"
            return out
        return run_timing(out, ref, c, scratch, timeout_s, memory_mb)
    finally:
        if ctx is None and c.runner is not None:
            c.runner.close()
