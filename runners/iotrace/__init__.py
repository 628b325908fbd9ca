"""I/O traces: Darshan logs (or a strace fallback) turned into a characterisation of the workload's I/O.

- ``load_trace(path)``: a Darshan log, a strace output or a capture folder -> ``IOCharacterisation``
  (``darshan_log.from_darshan``, ``strace_log.from_strace`` read one kind each);
- ``capture``: which tracer works here (``available_tracer``), and the traced command (``traced``);
- ``suggest``: the ranked suggestions; ``priorities``: the parameters to try first for a search space
  (``first_attempt``) and from a study's traced baseline (``priorities_from_history``).

PyDarshan and pandas are imported only when a trace is read.
"""

from .capture import available_tracer, find_libdarshan, load_trace, traced
from .model import IOCharacterisation, Suggestion, TraceError
from .priorities import FirstAttempt, first_attempt, priorities_from_history

__all__ = [
    "FirstAttempt",
    "IOCharacterisation",
    "Suggestion",
    "TraceError",
    "available_tracer",
    "find_libdarshan",
    "first_attempt",
    "load_trace",
    "priorities_from_history",
    "traced",
]
