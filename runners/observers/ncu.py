"""The Nsight Compute observer: about two dozen hardware counters of a kernel, condensed for a judge.

``prepare`` wraps a run that asks for it (environment ``TUNESMITH_NCU_PROFILE=1``; the kernel evaluator's
``profile`` phase does) in ``ncu`` with the curated ``METRICS`` (occupancy and what limits it, registers,
shared memory, DRAM and L2 throughput and hit rates, pipe utilisation, warp stall reasons), CSV output
to a log file in the run's folder, ``--profile-from-start off`` (the worker brackets the one call to
profile with cudaProfilerStart/Stop) and ``--clock-control none`` (tunesmith never changes clocks).
``collect`` parses the CSV (``parse_csv``: both the wide ``raw`` page and the long ``details`` layout),
and ``digest`` writes a few lines per kernel: time, achieved vs theoretical occupancy and its limiter,
DRAM/L2 throughput and hit rates, the busiest pipes and the top stall reasons, plus a one-word verdict
(memory-bound, compute-bound, latency-bound). Where ``ncu`` is missing or may not read the counters
(``ERR_NVGPUCTRPERM``) the observer says so in one line and the run goes on unprofiled.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..base import RunResult, RunSpec
from ..types import Measurement
from .base import Observer, add_to

if TYPE_CHECKING:
    from ..context import TrialContext

ENV = "TUNESMITH_NCU_PROFILE"
LOG_NAME = "ncu.csv"
_STALL = "smsp__average_warps_issue_stalled_{}_per_issue_active.ratio"
METRICS: dict[str, str] = {  # short name -> Nsight Compute metric
    "time_ns": "gpu__time_duration.sum",
    "occupancy_pct": "sm__warps_active.avg.pct_of_peak_sustained_active",
    "theoretical_occupancy_pct": "sm__maximum_warps_per_active_cycle_pct",
    "limit_registers": "launch__occupancy_limit_registers",
    "limit_shared_mem": "launch__occupancy_limit_shared_mem",
    "limit_warps": "launch__occupancy_limit_warps",
    "registers_per_thread": "launch__registers_per_thread",
    "smem_static_bytes": "launch__shared_mem_per_block_static",
    "smem_dynamic_bytes": "launch__shared_mem_per_block_dynamic",
    "block_size": "launch__block_size",
    "grid_size": "launch__grid_size",
    "sm_throughput_pct": "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "dram_throughput_pct": "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "dram_read_bytes": "dram__bytes_read.sum",
    "dram_write_bytes": "dram__bytes_write.sum",
    "l2_throughput_pct": "lts__throughput.avg.pct_of_peak_sustained_elapsed",
    "l2_hit_pct": "lts__t_sector_hit_rate.pct",
    "l1_hit_pct": "l1tex__t_sector_hit_rate.pct",
    "pipe_fma_pct": "sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active",
    "pipe_tensor_pct": "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active",
    "pipe_lsu_pct": "sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active",
    "stall_long_scoreboard": _STALL.format("long_scoreboard"),
    "stall_barrier": _STALL.format("barrier"),
    "stall_math_throttle": _STALL.format("math_pipe_throttle"),
    "stall_mio_throttle": _STALL.format("mio_throttle"),
}
_SHORT = {v: k for k, v in METRICS.items()}
PERMISSION = "ERR_NVGPUCTRPERM"


def find_ncu() -> str | None:
    """The ncu executable on PATH or in the usual CUDA folders."""
    found = shutil.which("ncu")
    if found:
        return found
    for folder in ("/usr/local/cuda/bin", "/opt/nvidia/nsight-compute"):
        path = Path(folder) / "ncu"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def ncu_command(ncu: str, argv: list[str], log_file: Path) -> list[str]:
    """``argv`` under Nsight Compute with the curated metrics, CSV to ``log_file``."""
    return [ncu, "--csv", "--page", "raw", "--metrics", ",".join(METRICS.values()), "--profile-from-start", "off",
            "--target-processes", "all", "--clock-control", "none", "--log-file", str(log_file), *argv]


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").strip())
    except ValueError:
        return None


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Kernels (``{"kernel": name, "id": ..., short metric: value}``) from ncu's CSV, wide or long layout."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("==")]
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    if not rows:
        return []
    head = rows[0]
    kernels: dict[str, dict[str, Any]] = {}
    if not {"ID", "Kernel Name"} <= set(head):
        return []
    if "Metric Name" in head:  # long layout: one row per (kernel, metric)
        if "Metric Value" not in head:
            return []
        ix = {name: head.index(name) for name in ("ID", "Kernel Name", "Metric Name", "Metric Value")}
        for row in rows[1:]:
            if len(row) < len(head):
                continue
            k = kernels.setdefault(row[ix["ID"]], {"id": row[ix["ID"]], "kernel": row[ix["Kernel Name"]]})
            short, value = _SHORT.get(row[ix["Metric Name"]]), _number(row[ix["Metric Value"]])
            if short and value is not None:
                k[short] = value
        return list(kernels.values())
    for row in rows[1:]:  # wide layout: a units row first, then one row per kernel
        if len(row) < len(head) or not row[head.index("ID")].strip().isdigit():
            continue
        k = {"id": row[head.index("ID")], "kernel": row[head.index("Kernel Name")]}
        for col, metric in enumerate(head):
            if metric in _SHORT and (value := _number(row[col])) is not None:
                k[_SHORT[metric]] = value
        kernels[k["id"]] = k
    return list(kernels.values())


def _limiter(k: dict[str, Any]) -> str:
    limits = {name: k[f"limit_{name}"] for name in ("registers", "shared_mem", "warps") if f"limit_{name}" in k}
    return min(limits, key=lambda n: limits[n]) if limits else "unknown"


def verdict(k: dict[str, Any]) -> str:
    """memory-bound, compute-bound or latency-bound, from throughput shares (a coarse first look)."""
    mem = max(k.get("dram_throughput_pct", 0.0), k.get("l2_throughput_pct", 0.0))
    comp = k.get("sm_throughput_pct", 0.0)
    if max(mem, comp) < 60:
        return "latency-bound (neither memory nor compute above 60 % of peak)"
    return "memory-bound" if mem >= comp else "compute-bound"


def digest_kernel(k: dict[str, Any]) -> str:
    """One short paragraph about one kernel, for the judge."""
    g = k.get
    stalls = sorted(((n[6:], v) for n, v in k.items() if n.startswith("stall_")), key=lambda x: -x[1])[:3]
    pipes = sorted(((n[5:-4], v) for n, v in k.items() if n.startswith("pipe_")), key=lambda x: -x[1])[:2]
    smem = g("smem_static_bytes", 0) + g("smem_dynamic_bytes", 0)
    return (
        f"{k['kernel']}: {g('time_ns', 0) / 1e3:.3g} us, {verdict(k)}; occupancy {g('occupancy_pct', 0):.0f} % "
        f"achieved of {g('theoretical_occupancy_pct', 0):.0f} % theoretical (limited by {_limiter(k)}; "
        f"{g('registers_per_thread', 0):.0f} registers/thread, {smem / 1024:.1f} KiB shared/block, "
        f"block {g('block_size', 0):.0f}, grid {g('grid_size', 0):.0f}); DRAM {g('dram_throughput_pct', 0):.0f} % "
        f"of peak ({(g('dram_read_bytes', 0) + g('dram_write_bytes', 0)) / 1e6:.3g} MB), L2 "
        f"{g('l2_throughput_pct', 0):.0f} % (hit {g('l2_hit_pct', 0):.0f} %), L1 hit {g('l1_hit_pct', 0):.0f} %; "
        f"SM {g('sm_throughput_pct', 0):.0f} %; busiest pipes "
        + ", ".join(f"{n} {v:.0f} %" for n, v in pipes)
        + "; top stalls (warps per issue) " + ", ".join(f"{n} {v:.2g}" for n, v in stalls)
    )


class NcuObserver(Observer):
    """Profiles runs that ask for it (``TUNESMITH_NCU_PROFILE=1``) under Nsight Compute; adds ``ncu.*``."""

    name: ClassVar[str] = "ncu"
    passive: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.ncu = find_ncu()
        self.why = "" if self.ncu else "ncu (Nsight Compute) not found on PATH"
        self.kernels: list[dict[str, Any]] = []
        self.log_file: Path | None = None

    def usable(self) -> tuple[bool, str]:
        """Whether a profile can be taken, and if not the one-line reason."""
        return (not self.why, self.why)

    def prepare(self, spec: RunSpec, ctx: TrialContext) -> RunSpec:
        if spec.env.get(ENV) != "1" or self.ncu is None or self.why:
            return spec
        self.log_file = spec.cwd / LOG_NAME
        self.log_file.unlink(missing_ok=True)
        return spec.model_copy(update={"argv": ncu_command(self.ncu, spec.argv, self.log_file),
                                       "timeout_s": spec.timeout_s * 3})

    def collect(self, result: RunResult, ctx: TrialContext) -> None:
        if self.log_file is None:
            return
        text = self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.is_file() else ""
        if PERMISSION in text + result.stdout_tail + result.stderr_tail:
            self.why = f"ncu may not read the GPU performance counters here ({PERMISSION})"
            return
        self.kernels = parse_csv(text)
        if not self.kernels:
            self.why = "ncu produced no kernel rows" + (f" (exit {result.returncode})" if result.returncode else "")

    def numeric(self) -> dict[str, float]:
        """``ncu.<metric>`` of the longest kernel profiled, and how many kernels there were."""
        if not self.kernels:
            return {}
        top = max(self.kernels, key=lambda k: k.get("time_ns", 0.0))
        out = {f"ncu.{k}": float(v) for k, v in top.items() if isinstance(v, float)}
        out["ncu.kernels"] = float(len(self.kernels))
        return out

    def digest(self) -> str:
        """A few lines for the judge, or the one-line reason there is no profile."""
        if not self.kernels:
            return f"Nsight Compute: {self.why or 'no profile taken'}; going on without hardware counters"
        ordered = sorted(self.kernels, key=lambda k: -k.get("time_ns", 0.0))[:3]
        return "Nsight Compute:\n" + "\n".join("- " + digest_kernel(k) for k in ordered)

    def finish(self, measurement: Measurement, ctx: TrialContext) -> Measurement:
        if self.log_file is None and not self.why:
            return measurement
        return add_to(measurement, metrics=self.numeric(), notes=[self.digest()])
