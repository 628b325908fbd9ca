"""The I/O trace observer: runs the first run of each trial under a tracer and characterises its I/O.

The tracer is darshan-runtime where ``libdarshan.so`` is found (``LD_PRELOAD`` with
``DARSHAN_ENABLE_NONMPI=1`` and ``DARSHAN_LOGFILE``, MPI or not), else strace (one output file per
process in the trial's scratch folder). Only the trial's first run is traced: that is the first warm-up
run when the job has ``[measure] warmup`` (untimed, so the tracer's overhead never reaches a sample) and
the first timed run otherwise (the note then says its sample includes the tracer's overhead; strace slows
a program that makes many small calls).

``finish`` adds the characterisation as ``iotrace.*`` metrics (bytes, I/O time, operations, shares, and
``iotrace.suggest.<category>`` scores the planner reads to order its first attempts), one note naming the
tracer and the top suggestions, and the characterisation as a JSON artifact kept in the study's scratch
folder (``<scratch>/<study>/iotrace/trial-NNNN.json``, which outlives the trial's own folder).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..base import RunResult, RunSpec
from ..types import Measurement
from .base import Observer, add_to

if TYPE_CHECKING:
    from ..context import TrialContext
    from ..iotrace.capture import Tracer
    from ..iotrace.model import IOCharacterisation

TRACE_DIR = "iotrace"


class IOTraceObserver(Observer):
    """Traces a trial's first run (darshan-runtime, else strace) and adds its I/O characterisation."""

    name: ClassVar[str] = "iotrace"
    passive: ClassVar[bool] = False
    tracers: ClassVar[tuple[Tracer, ...]] = ("darshan", "strace")

    def __init__(self) -> None:
        super().__init__()
        self.tracer: Tracer | None = None
        self.why_not = ""
        self.outdir: Path | None = None
        self.traced_label = ""
        self.traced_timed = False
        self.char: IOCharacterisation | None = None

    def prepare(self, spec: RunSpec, ctx: TrialContext) -> RunSpec:
        if ctx.runs or self.outdir is not None:
            return spec  # only the trial's first run is traced
        from ..iotrace.capture import available_tracer, traced

        self.tracer, self.why_not = available_tracer(self.tracers)
        if self.tracer is None:
            return spec
        self.outdir = ctx.workdir / TRACE_DIR
        shutil.rmtree(self.outdir, ignore_errors=True)
        argv, env = traced(spec.argv, spec.env, self.outdir, self.tracer)
        self.traced_timed = ctx.warmup <= 0
        return spec.model_copy(update={"argv": argv, "env": env})

    def collect(self, result: RunResult, ctx: TrialContext) -> None:
        if self.outdir is None or self.char is not None or len(ctx.runs) != 1:
            return
        from ..iotrace.capture import load_trace

        self.traced_label = ctx.runs[-1].label or "run 1"
        char = load_trace(self.outdir)
        if not char.exe:
            import shlex

            char = char.model_copy(update={"exe": shlex.join(ctx.runs[-1].spec.argv)[-300:]})
        self.char = char

    def _keep(self, ctx: TrialContext) -> str | None:
        """Write the characterisation where it outlives the trial's folder; its path."""
        if self.char is None:
            return None
        keep = ctx.workdir.parent / TRACE_DIR
        keep.mkdir(parents=True, exist_ok=True)
        path = keep / (f"trial-{ctx.trial:04d}.json" if ctx.trial is not None else f"{ctx.workdir.name}.json")
        path.write_text(self.char.model_dump_json(indent=1), encoding="utf-8")
        return str(path)

    def finish(self, measurement: Measurement, ctx: TrialContext) -> Measurement:
        if not ctx.runs:
            return measurement
        if self.tracer is None:
            return add_to(measurement, notes=[f"I/O trace unavailable: {self.why_not}"])
        if self.char is None:
            return add_to(measurement, notes=[f"I/O trace ({self.tracer}) gave no characterisation"])
        c = self.char
        top = "; ".join(f"{s.category} ({s.reason})" for s in c.suggestions[:2]) or "no tuning symptom found"
        cost = ("timed: its sample includes the tracer's overhead" if self.traced_timed
                else "untimed warm-up: the samples are untraced")
        note = (f"I/O trace from {c.source} ({c.source_detail}), {self.traced_label} ({cost}): "
                f"{c.bytes_written / 1e6:.3g} MB written, {c.bytes_read / 1e6:.3g} MB read, "
                f"{c.io_time_s:.3g} s in I/O calls; first: {top}")
        artifacts = {}
        kept = self._keep(ctx)
        if kept:
            artifacts["iotrace"] = kept
        return add_to(measurement, metrics=c.to_metrics(), notes=[note], artifacts=artifacts)
