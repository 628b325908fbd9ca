"""The Darshan observer: like ``iotrace``, but darshan-runtime only (no strace fallback).

Where ``libdarshan.so`` is found (``$DARSHAN_LIB``, the linker cache, ``$DARSHAN_ROOT/lib``, the usual
folders) the trial's first run goes under ``LD_PRELOAD`` with ``DARSHAN_ENABLE_NONMPI=1`` and
``DARSHAN_LOGFILE`` in the trial's folder, and the log is characterised with PyDarshan. Where it is not,
the trial runs untraced and its measurement carries a note saying so (use ``iotrace`` for the fallback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .iotrace import IOTraceObserver

if TYPE_CHECKING:
    from ..iotrace.capture import Tracer


class DarshanObserver(IOTraceObserver):
    """Runs a trial's first run under darshan-runtime and adds its I/O characterisation (``iotrace.*``)."""

    name: ClassVar[str] = "darshan"
    tracers: ClassVar[tuple[Tracer, ...]] = ("darshan",)
