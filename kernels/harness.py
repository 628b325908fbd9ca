"""The trusted evaluation worker: ``python -m tunesmith.kernels.harness SPEC.json``.

One fresh process per candidate. With ``"mode": "generated"`` it runs a generated ``model_new.py``
instead (``kernels.harness_generated``; the parent ``kernels.evaluation`` keeps the reference's outputs).
Otherwise it imports the user's module, checks the launcher with the candidate's
config against the reference on several seeds plus signed and heavy-tailed inputs (``correctness``), and
on a GPU times candidate, baseline config and eager reference interleaved in this one process
(``timing``). It writes one JSON result to the path in the environment variable the spec names
(``result_env``), else ``result.json`` in the working folder, and exits 0 whatever the candidate did:
the status field carries the verdict. The spec's fields are listed in ``SPEC_FIELDS``.

Imports only the standard library, torch and (after the interpreter choice is made) triton.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from . import correctness, timing

SPEC_FIELDS = (
    "module launcher reference inputs config baseline_config rtol atol seeds variants interpret "
    "samples min_ms pool compile_baseline peak_bandwidth_gbs result_env"
).split()
INTERPRET_DETAIL = "correctness only: timing unavailable under the Triton interpreter"

# Functions the candidate must not replace: timers, synchronisation and the comparisons themselves.
_GUARDED = [
    (time, "perf_counter"),
    (torch, "allclose"),
    (torch, "equal"),
    (torch.cuda, "synchronize"),
    (torch.cuda.Event, "record"),
    (torch.cuda.Event, "elapsed_time"),
    (torch.cuda.Event, "synchronize"),
    (correctness, "compare"),
    (correctness, "changed_inputs"),
    (timing, "bench_interleaved"),
    (torch, "save"),
    (torch.Tensor, "to"),
    (torch.Tensor, "clone"),
    (torch.Tensor, "detach"),
]
_ORIGINALS = [getattr(owner, name) for owner, name in _GUARDED]


class Verdict(Exception):
    """Ends the evaluation early with a status and a one-line detail."""

    def __init__(self, status: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    return f"{type(exc).__name__}: {line}"[:300]


def _is_compile_error(exc: BaseException) -> bool:
    return any(c.__name__ == "CompilationError" for c in type(exc).__mro__)


def _patched() -> list[str]:
    return [
        f"{getattr(owner, '__name__', owner)}.{name}"
        for (owner, name), orig in zip(_GUARDED, _ORIGINALS, strict=True)
        if getattr(owner, name) is not orig
    ]


def resolve_interpret(setting: Any) -> bool:
    """``"auto"``: interpret iff this worker sees no CUDA device. Sets TRITON_INTERPRET before triton loads."""
    cuda = torch.cuda.is_available()
    interpret = (not cuda) if setting == "auto" else bool(setting)
    if not interpret and not cuda:
        raise Verdict("infrastructure", "interpret=false but this worker sees no CUDA device")
    os.environ["TRITON_INTERPRET"] = "1" if interpret else "0"
    return interpret


def load_user(spec: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Import the user's file and return (launcher, reference, input maker)."""
    path = Path(spec["module"])
    sys.path.insert(0, str(path.parent))
    try:
        mod_spec = importlib.util.spec_from_file_location(f"tunesmith_user_{path.stem}", path)
        if mod_spec is None or mod_spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[mod_spec.name] = module
        mod_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file failed to build
        raise Verdict("compile", f"importing {path.name} failed: {first_line(exc)}") from None
    funcs = []
    for key in ("launcher", "reference", "inputs"):
        fn = getattr(module, spec[key], None)
        if not callable(fn):
            raise Verdict("compile", f"{path.name} has no function {spec[key]!r}")
        funcs.append(fn)
    return tuple(funcs)  # type: ignore[return-value]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _expected(reference: Any, inputs: tuple[Any, ...], device: str) -> list[torch.Tensor]:
    """The reference's output on its own copies, cloned; the original output is poisoned and freed."""
    try:
        out = reference(*correctness.clone_inputs(inputs))
        _sync(device)
    except Exception as exc:  # noqa: BLE001 - the trusted reference failing is not the candidate's fault
        raise Verdict("infrastructure", f"the reference failed: {first_line(exc)}") from None
    expected = [t.detach().clone() for t in correctness.output_tensors(out)]
    correctness.poison(out)
    del out
    return expected


def check_cases(spec: dict[str, Any], funcs: tuple[Any, Any, Any], device: str) -> dict[str, Any]:
    """Run the candidate on every case; raise a Verdict on the first failure. Returns error statistics."""
    launcher, reference, make_inputs = funcs
    try:
        cases = correctness.make_cases(
            make_inputs, spec["seeds"], device, spec.get("variants", correctness.VARIANTS)
        )
    except Exception as exc:  # noqa: BLE001 - a broken input maker is not the candidate's fault
        raise Verdict("infrastructure", f"the input maker failed: {first_line(exc)}") from None
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    stats: dict[str, Any] = {"max_abs_err": 0.0, "strict_pass": None, "cases": []}
    for n, case in enumerate(cases):
        expected = _expected(reference, case.inputs, device)
        snapshot = correctness.clone_inputs(case.inputs)
        threads = set(threading.enumerate())
        t0 = time.perf_counter()
        try:
            out = launcher(*case.inputs, **spec["config"])
            _sync(device)
        except Exception as exc:  # noqa: BLE001 - classify the candidate's failure
            # The first launch compiles; a CUDA fault or out-of-memory there is still a run-time failure.
            launch = (
                n == 0 and "CUDA error" not in str(exc) and not isinstance(exc, torch.cuda.OutOfMemoryError)
            )
            status = "compile" if launch or _is_compile_error(exc) else "runtime"
            raise Verdict(status, f"{case.name}: {first_line(exc)}") from None
        if n == 0 and device == "cuda":
            stats["compile_ms"] = (time.perf_counter() - t0) * 1e3
        new = [t.name for t in set(threading.enumerate()) - threads if t.is_alive()]
        problem = ""
        if _patched():
            problem = f"replaced trusted function(s) {', '.join(_patched())}"
        elif new:
            problem = f"left background thread(s) running: {', '.join(sorted(new))}"
        elif (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) != flags:
            problem = "changed the TF32 precision flags"
        elif bad := correctness.changed_inputs(case.inputs, snapshot):
            problem = f"modified its input(s) {bad}"
        check = correctness.compare(out, expected, case.inputs, spec["rtol"], spec["atol"])
        stats["max_abs_err"] = max(stats["max_abs_err"], check.max_abs_err)
        if check.strict_pass is not None:
            stats["strict_pass"] = check.strict_pass and stats["strict_pass"] is not False
        stats["cases"].append(
            {"name": case.name, "max_abs_err": check.max_abs_err, "ok": check.ok and not problem}
        )
        if problem or not check.ok:
            raise Verdict("correctness", f"{case.name}: {problem or check.problem}", **stats)
        del out
    return stats


def time_on_gpu(spec: dict[str, Any], funcs: tuple[Any, Any, Any]) -> dict[str, Any]:
    """Interleaved candidate / baseline config / eager (/ torch.compile) timing on fresh inputs per slot."""
    launcher, reference, make_inputs = funcs
    pool = [correctness.as_tuple(make_inputs(10_000 + i, "cuda")) for i in range(spec.get("pool", 3))]
    expected = [_expected(reference, p, "cuda") for p in pool]
    snapshots = [correctness.clone_inputs(p) for p in pool]
    last: dict[int, Any] = {}
    fns: dict[str, Any] = {}

    def candidate(i: int) -> None:
        try:
            last[i] = launcher(*pool[i], **spec["config"])
        except Verdict as exc:  # only this module decides a verdict
            raise RuntimeError(str(exc)) from None

    fns["candidate"] = candidate
    flags: list[str] = []
    base_cfg = spec.get("baseline_config")
    if base_cfg is not None:
        try:
            launcher(*pool[0], **base_cfg)
            torch.cuda.synchronize()
            fns["baseline"] = lambda i: launcher(*pool[i], **base_cfg)
        except Exception as exc:  # noqa: BLE001 - report, time the rest
            flags.append(f"baseline config failed: {first_line(exc)}")
    fns["eager"] = lambda i: reference(*pool[i])
    result: dict[str, Any] = {}
    if spec.get("compile_baseline"):
        compiled = torch.compile(reference)
        t0 = time.perf_counter()
        compiled(*pool[0])
        torch.cuda.synchronize()
        result["torch_compile_build_ms"] = (time.perf_counter() - t0) * 1e3
        fns["compiled"] = lambda i: compiled(*pool[i])
    flusher = timing.L2Flusher("cuda")
    result["persisting_l2_reset"] = timing.reset_persisting_l2()
    result["gpu_before"] = timing.gpu_state()
    run = timing.bench_interleaved(
        fns,
        pool=len(pool),
        samples=max(spec.get("samples", 100), 100),
        min_ms=spec.get("min_ms", 100.0),
        flush=flusher,
    )
    result["gpu_after"] = timing.gpu_state()
    for slot, out in last.items():
        check = correctness.compare(out, expected[slot], pool[slot], spec["rtol"], spec["atol"])
        if not check.ok:
            raise Verdict("correctness", f"timed call on fresh inputs {slot}: {check.problem}")
    if bad := [i for i, p in enumerate(pool) if correctness.changed_inputs(p, snapshots[i])]:
        raise Verdict("correctness", f"timed calls modified the inputs of slot(s) {bad}")
    if _patched():
        raise Verdict("correctness", f"replaced trusted function(s) {', '.join(_patched())}")
    for name, key in (
        ("candidate", "samples_ms"),
        ("baseline", "baseline_samples_ms"),
        ("eager", "eager_samples_ms"),
    ):
        result[key] = run.samples_ms.get(name, [])
    result["compiled_samples_ms"] = run.samples_ms.get("compiled", [])
    result["host_samples_ms"] = run.host_ms["candidate"]
    result["flush_bytes"] = flusher.nbytes
    result["device"] = timing.describe_device("cuda")
    result["dtypes"] = [str(t.dtype) for t in pool[0] if isinstance(t, torch.Tensor)]
    nbytes = sum(
        t.numel() * t.element_size() for t in [*pool[0], *expected[0]] if isinstance(t, torch.Tensor)
    )
    peak, peak_source = spec.get("peak_bandwidth_gbs") or None, "job"
    if peak is None:
        peak, peak_source = timing.peak_bandwidth_gbs("cuda")
    result.update(bytes_moved=nbytes, peak_bandwidth_gbs=peak, peak_source=peak_source)
    result["sol_ms"] = timing.sol_ms(nbytes, peak)
    med = sorted(run.samples_ms["candidate"])[len(run.samples_ms["candidate"]) // 2]
    host_med = sorted(run.host_ms["candidate"])[len(run.host_ms["candidate"]) // 2]
    if med < result["sol_ms"]:
        flags.append(f"faster than light: {med:.4g} ms < {result['sol_ms']:.4g} ms to move {nbytes} bytes")
    if timing.timer_mismatch(med, host_med):
        flags.append(f"event time {med:.4g} ms exceeds host wall time {host_med:.4g} ms")
    result["flags"] = flags
    return result


def evaluate_generated_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The "generated source" mode (``kernels.harness_generated``): one phase; never raises."""
    from tunesmith.kernels import harness_generated as generated  # its Verdict is the package module's

    result: dict[str, Any] = {"status": "ok", "detail": "", "mode": "generated"}
    try:
        interpret = resolve_interpret(spec.get("interpret", "auto"))
        result["interpret"] = interpret
        if not interpret:  # a fixed precision policy: true fp32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        result.update(generated.evaluate_generated(spec, interpret))
    except (Verdict, generated.Verdict) as v:
        result.update(v.extra, status=v.status, detail=v.detail)
    except torch.cuda.OutOfMemoryError as exc:
        result.update(status="runtime_error", detail=first_line(exc))
    except Exception as exc:  # noqa: BLE001 - candidate code can raise anything
        result.update(status="runtime_error", detail=first_line(exc), traceback=traceback.format_exc()[-2000:])
    return result


def evaluate(spec: dict[str, Any]) -> dict[str, Any]:
    """The whole evaluation; never raises. ``"mode": "generated"`` runs a generated ModelNew instead."""
    if spec.get("mode") == "generated":
        return evaluate_generated_spec(spec)
    result: dict[str, Any] = {"status": "ok", "detail": "", "timing_available": False, "samples_ms": []}
    try:
        interpret = resolve_interpret(spec.get("interpret", "auto"))
        device = "cpu" if interpret else "cuda"
        result.update(interpret=interpret, device_kind=device)
        if not interpret:  # a fixed precision policy: true fp32 unless the job allows TF32
            torch.backends.cuda.matmul.allow_tf32 = bool(spec.get("allow_tf32", False))
            torch.backends.cudnn.allow_tf32 = bool(spec.get("allow_tf32", False))
        funcs = load_user(spec)
        if _patched():
            raise Verdict("correctness", f"importing the module replaced {', '.join(_patched())}")
        result.update(check_cases(spec, funcs, device))
        if interpret:
            result["detail"] = INTERPRET_DETAIL
            return result
        result.update(time_on_gpu(spec, funcs), timing_available=True)
        result["detail"] = (
            f"{len(result['samples_ms'])} interleaved samples; correct on {len(result['cases'])} cases"
        )
    except Verdict as v:
        result.update(v.extra, status=v.status, detail=v.detail)
    except torch.cuda.OutOfMemoryError as exc:
        result.update(status="runtime", detail=first_line(exc))
    except Exception as exc:  # noqa: BLE001 - candidate code can raise anything while being timed
        result.update(status="runtime", detail=first_line(exc), traceback=traceback.format_exc()[-2000:])
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tunesmith.kernels.harness SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    out = Path(os.environ.get(spec.get("result_env", ""), "") or "result.json")
    result = evaluate(spec)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, default=str), encoding="utf-8")
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
