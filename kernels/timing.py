"""GPU timing for the kernel harness, following docs/measuring.md.

Every timed call is preceded by an L2 flush (a write of at least 256 MB and twice the L2), is bracketed by
CUDA events on the current stream with a device-wide ``torch.cuda.synchronize()`` before the end event
(work on another stream cannot escape), and is cross-checked with host wall time. Candidate, baseline and
eager reference are interleaved call by call (A B C A B C) in one process, so their medians come from the
same session, clocks and temperature. Nothing here changes clocks; ``gpu_state`` only reads them.
Imports only the standard library and torch: this runs in the evaluation worker.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

FLUSH_MB = 256
DEFAULT_PEAK_GBS = 3350.0  # H100 SXM HBM3, used when the device's own figure is unknown
_PEAK_GBS = {"H200": 4800.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100-SXM4-80GB": 2039.0, "A100": 1555.0}
_CU_LIMIT_PERSISTING_L2_CACHE_SIZE = 0x06


def l2_cache_bytes(device: torch.device | str = "cuda") -> int:
    """The device's L2 size in bytes (50 MB, an H100's, when the driver does not say)."""
    props = torch.cuda.get_device_properties(torch.device(device))
    return int(getattr(props, "L2_cache_size", 0) or 50 * 2**20)


class L2Flusher:
    """A buffer of ``max(mb MiB, 2 x L2)`` bytes; calling the flusher overwrites all of it on the GPU."""

    def __init__(self, device: torch.device | str = "cuda", mb: int = FLUSH_MB) -> None:
        self.nbytes = max(mb * 2**20, 2 * l2_cache_bytes(device))
        self.buffer = torch.empty(self.nbytes, dtype=torch.int8, device=device)

    def __call__(self) -> None:
        self.buffer.zero_()


def peak_bandwidth_gbs(device: torch.device | str = "cuda") -> tuple[float, str]:
    """Peak DRAM bandwidth in GB/s and where the figure came from (device properties, name table, default)."""
    props = torch.cuda.get_device_properties(torch.device(device))
    clock_khz = getattr(props, "memory_clock_rate", 0) or 0
    bus_bits = getattr(props, "memory_bus_width", 0) or 0
    if clock_khz > 0 and bus_bits > 0:  # double data rate: two transfers per clock
        return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9, "device properties"
    for key, gbs in _PEAK_GBS.items():
        if key in props.name:
            return gbs, f"table ({key})"
    return DEFAULT_PEAK_GBS, "default (H100 SXM)"


def reset_persisting_l2() -> bool | None:
    """Set this context's persisting-L2 limit to 0 (no access-policy window can survive a flush).

    Returns whether the limit now reads 0, or None where the driver library cannot be reached.
    """
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        torch.cuda.synchronize()  # the primary context exists and is current on this thread
        cuda.cuCtxSetLimit(ctypes.c_int(_CU_LIMIT_PERSISTING_L2_CACHE_SIZE), ctypes.c_size_t(0))
        value = ctypes.c_size_t(1)
        if cuda.cuCtxGetLimit(ctypes.byref(value), ctypes.c_int(_CU_LIMIT_PERSISTING_L2_CACHE_SIZE)) != 0:
            return None
        return value.value == 0
    except (OSError, AttributeError):
        return None


def _smi_id(device: torch.device | str) -> str:
    uuid = str(getattr(torch.cuda.get_device_properties(torch.device(device)), "uuid", "") or "")
    if uuid:
        return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return visible or "0"


def gpu_state(device: torch.device | str = "cuda") -> dict[str, Any]:
    """SM clock (MHz), temperature (C) and power (W) read with pynvml or nvidia-smi; empty if neither works."""
    ident = _smi_id(device)
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            h = pynvml.nvmlDeviceGetHandleByUUID(ident.encode()) if "-" in ident else None
            h = h or pynvml.nvmlDeviceGetHandleByIndex(int(ident))
            return {
                "sm_clock_mhz": float(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)),
                "temperature_c": float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)),
                "power_w": pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
                "source": "pynvml",
            }
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - pynvml missing or failing: fall back to nvidia-smi
        pass
    if not shutil.which("nvidia-smi"):
        return {}
    for select in (["-i", ident], []):  # this device; else the only one nvidia-smi sees
        values = _smi_query(select)
        if values is not None:
            return dict(zip(("sm_clock_mhz", "temperature_c", "power_w"), values, strict=True)) | {
                "source": "nvidia-smi"
            }
    return {}


def _smi_query(select: list[str]) -> list[float] | None:
    query = "clocks.sm,temperature.gpu,power.draw"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits", *select],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        rows = out.splitlines()
        values = [float(v) for v in rows[0].split(",")]
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        return None
    return values if len(rows) == 1 and len(values) == 3 else None


@dataclass
class TimedRun:
    """Samples in ms per timed function (first timed sample discarded) and host wall times around the same calls."""

    samples_ms: dict[str, list[float]] = field(default_factory=dict)
    host_ms: dict[str, list[float]] = field(default_factory=dict)
    rounds: int = 0


def _call_ms(fn: Callable[[int], Any], slot: int, flush: L2Flusher | None) -> tuple[float, float]:
    if flush is not None:
        flush()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0 = time.perf_counter()
    start.record()
    fn(slot)
    torch.cuda.synchronize()  # device-wide: work on another stream or thread must finish inside the timer
    end.record()
    end.synchronize()
    host = (time.perf_counter() - t0) * 1e3
    return start.elapsed_time(end), host


def warm_up(fn: Callable[[int], Any], pool: int, *, calls: int = 3, min_ms: float = 25.0) -> float:
    """Call ``fn`` untimed at least ``calls`` times and ``min_ms``; returns the last call's host ms."""
    t_start, n, last = time.perf_counter(), 0, 0.0
    while n < calls or ((time.perf_counter() - t_start) * 1e3 < min_ms and n < 1000):
        t0 = time.perf_counter()
        fn(n % pool)
        torch.cuda.synchronize()
        last = (time.perf_counter() - t0) * 1e3
        n += 1
    return last


def bench_interleaved(
    fns: dict[str, Callable[[int], Any]],
    *,
    pool: int = 1,
    samples: int = 100,
    min_ms: float = 100.0,
    max_samples: int = 10_000,
    max_s: float = 120.0,
    flush: L2Flusher | None = None,
    warmup_calls: int = 3,
    warmup_ms: float = 25.0,
) -> TimedRun:
    """Time each function once per round, in order (A B C A B C ...), until every one has ``samples``
    samples and the first has accumulated ``min_ms`` (or ``max_samples`` / ``max_s`` is reached).

    Each function takes a slot index ``0..pool-1`` (rounds cycle through the slots) so callers can feed
    fresh inputs to consecutive calls. Round 0 is timed but discarded.
    """
    if not fns:
        raise ValueError("bench_interleaved needs at least one function")
    for fn in fns.values():
        warm_up(fn, pool, calls=warmup_calls, min_ms=warmup_ms)
    run = TimedRun({k: [] for k in fns}, {k: [] for k in fns})
    first = next(iter(fns))
    t_start = time.perf_counter()
    while True:
        slot = run.rounds % pool
        for name, fn in fns.items():
            ms, host = _call_ms(fn, slot, flush)
            if run.rounds > 0:
                run.samples_ms[name].append(ms)
                run.host_ms[name].append(host)
        run.rounds += 1
        n = run.rounds - 1
        enough = n >= samples and sum(run.samples_ms[first]) >= min_ms
        if enough or n >= max_samples or (n >= samples and time.perf_counter() - t_start > max_s):
            return run


# Dense peak TFLOP/s by device name and dtype (vendor datasheets, SXM parts); fp32 means true fp32, no TF32.
_PEAK_TFLOPS = {
    "H200": {"float32": 67.0, "float16": 989.0, "bfloat16": 989.0},
    "H100 PCIe": {"float32": 51.0, "float16": 756.0, "bfloat16": 756.0},
    "H100": {"float32": 67.0, "float16": 989.0, "bfloat16": 989.0},
    "A100": {"float32": 19.5, "float16": 312.0, "bfloat16": 312.0},
}


def peak_tflops(device: torch.device | str = "cuda", dtype: str = "float32") -> tuple[float, str]:
    """Dense peak TFLOP/s for ``dtype`` on the device and where the figure came from (name table, default)."""
    name = torch.cuda.get_device_properties(torch.device(device)).name
    for key, table in _PEAK_TFLOPS.items():
        if key in name:
            return table.get(dtype, table["float32"]), f"table ({key})"
    return _PEAK_TFLOPS["H100"].get(dtype, 67.0), "default (H100 SXM)"


def sol_bound_ms(nbytes: int, flops: int, peak_gbs: float, peak_tflops_: float) -> float:
    """The speed-of-light time: the larger of moving ``nbytes`` at peak bandwidth and ``flops`` at peak rate."""
    compute = flops / (peak_tflops_ * 1e12) * 1e3 if peak_tflops_ > 0 else 0.0
    return max(sol_ms(nbytes, peak_gbs), compute)


def sol_ms(nbytes: int, peak_gbs: float) -> float:
    """The speed-of-light time to move ``nbytes`` once at the peak bandwidth, in ms."""
    return nbytes / (peak_gbs * 1e9) * 1e3 if peak_gbs > 0 else 0.0


def timer_mismatch(event_ms: float, host_ms: float) -> bool:
    """True when CUDA events report more time than the host saw around the same call (a patched timer)."""
    return math.isfinite(event_ms) and event_ms > 1.1 * host_ms + 0.05


def describe_device(device: torch.device | str = "cuda") -> dict[str, Any]:
    """Name, capability, L2 size and precision flags: recorded with every GPU result."""
    props = torch.cuda.get_device_properties(torch.device(device))
    return {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "l2_bytes": l2_cache_bytes(device),
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
    }


if __name__ == "__main__":  # a quick look at what this machine reports: python -m tunesmith.kernels.timing
    if torch.cuda.is_available():
        print(json.dumps(describe_device() | gpu_state() | {"peak_gbs": peak_bandwidth_gbs()}, indent=2))
    else:
        print("no CUDA device: nothing to time")
