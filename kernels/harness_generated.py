"""The kernel harness's "generated source" mode: runs an untrusted ``model_new.py`` in this worker process.

``python -m tunesmith.kernels.harness SPEC.json`` with ``"mode": "generated"`` lands here. The trusted
parent (``kernels.evaluation``) made the inputs and keeps the reference's outputs to itself; this worker
never sees them. It builds ``ModelNew`` with the parent's seed and init inputs and, per phase:

- ``check``: runs every case under an op log (``proof.OpLog``), a hook that counts Triton launches
  (and pauses the log inside them) and, on a GPU, ``torch.profiler`` for the device kernels; refuses on the spot a candidate that replaced a trusted function, left a thread
  running, changed the TF32 flags, modified an input, or returned something other than plain tensors
  that share no memory with an input. The outputs go to ``outputs.pt`` for the parent to compare; case 0
  runs again after the memory state was changed (allocator garbage, another malloc perturb byte), so
  output read from uninitialised memory shows up as a difference.
- ``time`` (GPU): candidate, eager reference and ``torch.compile``d reference interleaved with an L2
  flush before every call (``timing.bench_interleaved``), on a pool of fresh full-size inputs (the parent draws the same ones to check against); the
  last output of every slot is saved for the parent to check.
- ``profile`` (GPU, under Nsight Compute): one warm-up call, then one call between profiler start/stop.

Imports only the standard library, torch and (after the interpreter choice) triton.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from . import correctness, proof, timing
from .harness import Verdict, _is_compile_error, _patched, first_line

_M_PERTURB = -6  # glibc mallopt: fill freed memory with this byte, new memory with its complement
GARBAGE = (0x11, 0xEE)  # the memory state of the first runs, and of the repeat


def _launch_hook(log: proof.OpLog, launches: Counter[str], recording: list[bool]) -> list[tuple[Any, Any]]:
    """Count Triton launches by kernel name (JIT and interpreter) and pause the op log inside them."""
    from triton.runtime.jit import JITFunction

    classes: list[Any] = [JITFunction]
    try:
        from triton.runtime.interpreter import InterpretedFunction

        classes.append(InterpretedFunction)
    except ImportError:
        pass
    installed = []
    for cls in classes:
        original = cls.run

        def run(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            name = getattr(getattr(self, "fn", None), "__name__", "?")
            if recording[0]:
                launches[name] += 1
            log.paused += 1
            try:
                return _original(self, *args, **kwargs)
            finally:
                log.paused -= 1

        cls.run = run
        installed.append((cls, run))
    return installed


def scramble(device: str, nbytes: list[int], byte: int) -> None:
    """Change the memory state: freed blocks of the outputs' sizes filled with ``byte`` (and malloc's perturb)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_PERTURB, byte)
    except (OSError, AttributeError):
        pass
    blocks = [torch.full((max(n, 1),), byte, dtype=torch.uint8, device=device) for n in nbytes for _ in range(8)]
    del blocks


def load_candidate(path: Path) -> Any:
    """Import model_new.py and return its ModelNew class (a Verdict on failure)."""
    try:
        spec = importlib.util.spec_from_file_location("model_new", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the candidate failed to build
        raise Verdict("compile_error", f"importing {path.name} failed: {first_line(exc)}") from None
    if _patched():
        raise Verdict("rejected", f"importing {path.name} replaced trusted function(s) {', '.join(_patched())}")
    cls = getattr(module, "ModelNew", None)
    if not isinstance(cls, type):
        raise Verdict("compile_error", f"{path.name} defines no class ModelNew")
    return cls


def build(cls: Any, init: list[Any], seed: int, device: str) -> Any:
    """``cls(*init)`` under the same seed the parent used for Model, moved to the device."""
    try:
        torch.manual_seed(seed)
        return cls(*init).to(device).eval()
    except Exception as exc:  # noqa: BLE001
        raise Verdict("runtime_error", f"constructing ModelNew failed: {first_line(exc)}") from None


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _storage_span(t: torch.Tensor) -> tuple[int, int]:
    s = t.untyped_storage()
    return s.data_ptr(), s.data_ptr() + s.nbytes()


def _check_output(out: Any, inputs: tuple[Any, ...], where: str, device: str = "") -> list[torch.Tensor]:
    """Plain tensors on the device sharing no memory with an input, copied to the CPU."""
    got = correctness.output_tensors(out)
    copies = []
    for k, o in enumerate(got):
        name = f"output {k}" if len(got) > 1 else "output"
        if type(o) is not torch.Tensor:
            raise Verdict("rejected", f"{where}: {name} is {correctness._kind(o)}, not a plain torch.Tensor")
        if device and o.device.type != device:
            raise Verdict("incorrect", f"{where}: {name} is on {o.device}, the inputs on {device}")
        lo, hi = _storage_span(o)
        for i, x in enumerate(inputs):
            if isinstance(x, torch.Tensor) and lo < hi:
                xlo, xhi = _storage_span(x)
                if lo < xhi and xlo < hi:
                    raise Verdict("rejected", f"{where}: {name} shares memory with input {i}; return a new tensor")
        copies.append(o.detach().to("cpu", copy=True))
    return copies


def _inside_triton(exc: BaseException) -> bool:
    """Whether the exception came out of Triton's own code (building or interpreting a kernel)."""
    tb = exc.__traceback__
    while tb is not None:
        if f"{os.sep}triton{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def call(model: Any, inputs: tuple[Any, ...], device: str, where: str, first: bool,
         log: proof.OpLog | None = None) -> Any:
    """One forward call with the trusted checks around it."""
    snapshot = correctness.clone_inputs(inputs)
    threads = set(threading.enumerate())
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        with torch.no_grad(), log if log is not None else contextlib.nullcontext():
            out = model(*inputs)
        _sync(device)
    except Exception as exc:  # noqa: BLE001 - classify the candidate's failure
        compile_like = _is_compile_error(exc) or (first and _inside_triton(exc) and "CUDA error" not in str(exc))
        raise Verdict("compile_error" if compile_like else "runtime_error", f"{where}: {first_line(exc)}") from None
    new = [t.name for t in set(threading.enumerate()) - threads if t.is_alive()]
    if _patched():
        raise Verdict("rejected", f"{where}: replaced trusted function(s) {', '.join(_patched())}")
    if new:
        raise Verdict("rejected", f"{where}: left background thread(s) running: {', '.join(sorted(new))}")
    if (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) != flags:
        raise Verdict("rejected", f"{where}: changed the TF32 precision flags")
    if bad := correctness.changed_inputs(inputs, snapshot):
        raise Verdict("rejected", f"{where}: modified its input(s) {bad}")
    return out


def _to(inputs: list[Any], device: str) -> tuple[Any, ...]:
    return tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs)


def check_phase(spec: dict[str, Any], device: str) -> dict[str, Any]:
    """Run every case; save the outputs and the repeat of case 0; return the trace."""
    data = torch.load(spec["cases"], weights_only=True)
    log, launches, recording = proof.OpLog(), Counter(), [False]
    hooks = _launch_hook(log, launches, recording)
    model = build(load_candidate(Path(spec["source"])), data["init_inputs"], data["seed"], device)
    outputs, nbytes = [], [int(n) for n in data.get("out_nbytes", [])]
    with proof.profiler() if device == "cuda" else contextlib.nullcontext() as prof:
        for n, case in enumerate(data["cases"]):
            inputs = _to(case["inputs"], device)
            scramble(device, nbytes, GARBAGE[0])
            recording[0] = True
            out = call(model, inputs, device, case["name"], first=n == 0, log=log)
            recording[0] = False
            outputs.append(_check_output(out, inputs, case["name"], device))
            del out
    gpu_kernels = proof.gpu_kernels(prof) if prof is not None else {}
    scramble(device, nbytes, GARBAGE[1])
    inputs = _to(data["cases"][0]["inputs"], device)
    repeat = _check_output(call(model, inputs, device, "repeat of " + data["cases"][0]["name"], False), inputs, "")
    if any(cls.run is not run for cls, run in hooks):
        raise Verdict("rejected", "replaced the harness's Triton launch hook")
    torch.save({"outputs": outputs, "repeat": repeat}, spec["out"])
    return {"trace": {"triton_kernels": dict(launches), "aten_ops": dict(log.ops), "gpu_kernels": dict(gpu_kernels)}}


def _load_problem(path: Path) -> Any:
    mod_spec = importlib.util.spec_from_file_location("tunesmith_reference_problem", path)
    module = importlib.util.module_from_spec(mod_spec)  # type: ignore[arg-type]
    mod_spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _pool(problem: Any, spec: dict[str, Any], device: str = "cuda") -> list[tuple[Any, ...]]:
    """The timing inputs: the problem's full-size maker under the parent's pool seeds (it draws the same)."""
    pool = []
    for seed in spec["pool_seeds"]:
        torch.manual_seed(int(seed))
        pool.append(_to(list(correctness.as_tuple(problem.get_inputs())), device))
    return pool


def time_phase(spec: dict[str, Any], device: str = "cuda") -> dict[str, Any]:
    """Candidate, eager and torch.compile'd reference interleaved on the pool, L2 flushed before each call.

    ``device`` is "cuda" in a real run; tests pass "cpu" with a stand-in for ``timing``."""
    data = torch.load(spec["cases"], weights_only=True)
    try:
        problem = _load_problem(Path(spec["problem"]))
        torch.manual_seed(data["seed"])
        reference = problem.Model(*data["init_inputs"]).to(device).eval()
    except Exception as exc:  # noqa: BLE001 - the trusted reference failing is not the candidate's fault
        raise Verdict("infrastructure", f"the reference failed to build: {first_line(exc)}") from None
    model = build(load_candidate(Path(spec["source"])), data["init_inputs"], data["seed"], device)
    pool = _pool(problem, spec, device)
    snapshots = [correctness.clone_inputs(p) for p in pool]
    last: dict[int, Any] = {}
    fns: dict[str, Any] = {}
    result: dict[str, Any] = {"flags": []}

    def candidate(i: int) -> None:
        with torch.no_grad():
            last[i] = model(*pool[i])

    fns["candidate"] = candidate
    fns["eager"] = lambda i: reference(*pool[i])
    if spec.get("compile_baseline", True):
        try:
            compiled = torch.compile(reference)
            t0 = time.perf_counter()
            with torch.no_grad():
                compiled(*pool[0])
            _sync(device)
            result["torch_compile_build_ms"] = (time.perf_counter() - t0) * 1e3
            fns["compile"] = lambda i: compiled(*pool[i])
        except Exception as exc:  # noqa: BLE001 - time the rest
            result["flags"].append(f"torch.compile of the reference failed: {first_line(exc)}")
    flusher = timing.L2Flusher(device)
    result["persisting_l2_reset"] = timing.reset_persisting_l2()
    result["gpu_before"] = timing.gpu_state()
    with torch.no_grad():
        run = timing.bench_interleaved(fns, pool=len(pool), samples=max(int(spec.get("samples", 100)), 100),
                                       min_ms=float(spec.get("min_ms", 100.0)), flush=flusher)
    result["gpu_after"] = timing.gpu_state()
    if _patched():
        raise Verdict("rejected", f"replaced trusted function(s) {', '.join(_patched())} while timed")
    if bad := [i for i, p in enumerate(pool) if correctness.changed_inputs(p, snapshots[i])]:
        raise Verdict("rejected", f"timed calls modified the inputs of pool slot(s) {bad}")
    timed = [_check_output(last[i], pool[i], f"timed call on pool slot {i}", device) for i in sorted(last)]
    torch.save({"timed": timed}, spec["out"])
    dtypes = [t.dtype for t in pool[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
    dtype = str(dtypes[0] if dtypes else torch.float32).removeprefix("torch.")
    result["peak_gbs"], result["peak_gbs_source"] = timing.peak_bandwidth_gbs(device)
    result["peak_tflops"], result["peak_tflops_source"] = timing.peak_tflops(device, dtype)
    result.update(samples_ms=run.samples_ms, host_ms=run.host_ms, flush_bytes=flusher.nbytes,
                  device=timing.describe_device(device), dtype=dtype)
    return result


def profile_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """One untimed warm-up call, then one call between cudaProfilerStart and Stop (for Nsight Compute)."""
    data = torch.load(spec["cases"], weights_only=True)
    inputs = _pool(_load_problem(Path(spec["problem"])), spec)[0]
    model = build(load_candidate(Path(spec["source"])), data["init_inputs"], data["seed"], "cuda")
    call(model, inputs, "cuda", "warm-up", True)
    torch.cuda.profiler.start()
    call(model, inputs, "cuda", "profiled call", False)
    torch.cuda.profiler.stop()
    return {}


def evaluate_generated(spec: dict[str, Any], interpret: bool) -> dict[str, Any]:
    """The generated-source evaluation of one phase; raises Verdict for the candidate's failures."""
    device = "cpu" if interpret else "cuda"
    phase = spec.get("phase", "check")
    if phase == "check":
        return check_phase(spec, device)
    if interpret:
        raise Verdict("infrastructure", f"phase {phase!r} needs a GPU")
    return time_phase(spec) if phase == "time" else profile_phase(spec)
