"""The resource observer: CPU time, peak memory and disk traffic of each run's whole process tree.

The runner that watched a run reports what the tree used in ``RunResult.resources`` (``cpu_user_s``,
``cpu_system_s``, ``peak_rss_mb``, ``read_bytes``, ``write_bytes``). Per trial this observer takes the
median of each over the timed runs and adds them as ``res.*`` metrics:

- ``res.cpu_user_s``, ``res.cpu_system_s``, ``res.cpu_s`` (their sum), ``res.wall_s`` (the run's wall time)
- ``res.cpu_fraction``: cpu_s / wall_s, the cores kept busy on average (2.0 = two cores all the time)
- ``res.cpu_util``: cpu_fraction / the cores this machine lets us use (0..1)
- ``res.peak_rss_mb``, ``res.read_mb``, ``res.write_mb`` (storage-layer bytes, as /proc/PID/io counts them)

and one note that says whether the trial was CPU-bound or waiting (on I/O when it moved data), e.g.
"CPU-bound: 1.9 of 2 cores busy" or "waiting on I/O: CPU busy 8 % of the wall time, 512 MB written".
A runner that reports nothing gives the note "resource use unavailable from this runner" and no metrics.
When the machine's load exceeds its cores the note says so: a low CPU share may then mean waiting for a CPU.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar

from ..stats import median
from ..types import Measurement
from .base import Observer, add_to

if TYPE_CHECKING:
    from ..context import TrialContext

UNAVAILABLE = "resource use unavailable from this runner"
CPU_BOUND = 0.75  # cores busy on average at or above which a run is called CPU-bound
WAITING = 0.3  # cores busy below which it is called waiting
MOVED_MB = 1.0  # disk traffic below this is "little disk I/O"


def usable_cores() -> int:
    """The cores this process may run on (its affinity), which its children inherit."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_load() -> float | None:
    """The one-minute load average, or None where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _mb(value: float) -> str:
    return f"{value:.1f} MB" if value < 10 else f"{value:.0f} MB"


def judge(cpu_fraction: float, cores: int, read_mb: float | None, write_mb: float | None) -> str:
    """One line: CPU-bound, waiting on I/O, mostly idle, or mixed, with the numbers behind it."""
    moved = [f"{_mb(v)} {what}" for v, what in ((read_mb, "read"), (write_mb, "written")) if v and v >= 0.05]
    traffic = ", ".join(moved) if moved else "little disk I/O"
    if cpu_fraction >= CPU_BOUND:
        return f"CPU-bound: {cpu_fraction:.1f} of {cores} cores busy ({traffic})"
    busy = f"CPU busy {cpu_fraction * 100:.0f} % of the wall time"
    if cpu_fraction < WAITING:
        if (read_mb or 0) + (write_mb or 0) >= MOVED_MB:
            return f"waiting on I/O: {busy}, {traffic}"
        return f"mostly waiting, not on the disk: {busy}, {traffic} (sleep, network or cached reads)"
    return f"mixed CPU and waiting: {busy} ({cpu_fraction:.2f} of {cores} cores), {traffic}"


class ResourceObserver(Observer):
    """Adds the process tree's CPU time, peak RSS and disk traffic (``res.*``) and a CPU-or-I/O judgement."""

    name: ClassVar[str] = "resources"
    passive: ClassVar[bool] = True

    def finish(self, measurement: Measurement, ctx: TrialContext) -> Measurement:
        runs = ctx.timed_runs()
        if not runs:
            return measurement  # nothing ran (a replayed or rejected candidate)
        used = [r.result for r in runs if r.result.resources]
        if not used:
            return add_to(measurement, notes=[UNAVAILABLE])
        per_key: dict[str, list[float]] = {}
        fractions: list[float] = []
        for res in used:
            r = res.resources
            values = dict(r)
            if "cpu_user_s" in r or "cpu_system_s" in r:
                values["cpu_s"] = r.get("cpu_user_s", 0.0) + r.get("cpu_system_s", 0.0)
                if res.wall_s > 0:
                    fractions.append(values["cpu_s"] / res.wall_s)
            for src, dst in (("read_bytes", "read_mb"), ("write_bytes", "write_mb")):
                if src in r:
                    values[dst] = r[src] / 1e6
            values["wall_s"] = res.wall_s
            for key in ("cpu_user_s", "cpu_system_s", "cpu_s", "wall_s", "peak_rss_mb", "read_mb", "write_mb"):
                if key in values:
                    per_key.setdefault(key, []).append(float(values[key]))
        metrics = {f"res.{k}": median(v) for k, v in per_key.items()}
        cores = usable_cores()
        metrics["res.cores"] = float(cores)
        notes = []
        if fractions:
            fraction = median(fractions)
            metrics["res.cpu_fraction"] = fraction
            metrics["res.cpu_util"] = fraction / cores
            line = judge(fraction, cores, metrics.get("res.read_mb"), metrics.get("res.write_mb"))
            if "res.peak_rss_mb" in metrics:
                line += f"; peak RSS {metrics['res.peak_rss_mb']:.0f} MB"
            load = machine_load()
            if load is not None and load > cores:  # a low CPU share may then be waiting for a CPU, not for I/O
                line += f"; machine load {load:.1f} on {cores} cores, other processes competed for the CPU"
            notes.append(f"resource use: {line} (median of {len(used)} run(s))")
        else:
            notes.append("resource use: the runner reported no CPU time; no CPU-or-I/O judgement")
        return add_to(measurement, metrics=metrics, notes=notes)
