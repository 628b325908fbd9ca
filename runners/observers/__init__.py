"""The observer registry: a name in ``[measure] observers`` -> its class, imported on first use.

Adding an observer is one module with an ``Observer`` subclass and one line here (or one
``OBSERVERS.register(name, "module:Class")`` call from a plugin).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import JobError
from ..registry import Registry
from .base import Observer

OBSERVERS: Registry[Observer] = Registry(
    "observer",
    {
        "resources": "tunesmith.runners.observers.resources:ResourceObserver",
        "iotrace": "tunesmith.runners.observers.iotrace:IOTraceObserver",
        "darshan": "tunesmith.runners.observers.darshan:DarshanObserver",
        "kernel_trace": "tunesmith.runners.observers.kernel_trace:KernelTraceObserver",
        "ncu": "tunesmith.runners.observers.ncu:NcuObserver",
    },
)

DEFAULT_OBSERVERS = ("resources",)


def check_observers(names: Iterable[str]) -> None:
    """Raise a one-line JobError for a name no observer is registered under."""
    for name in names:
        if name not in OBSERVERS.names():
            raise JobError(f"measure.observers: unknown observer {name!r}", f"use one of {', '.join(OBSERVERS.names())}")


def build_observers(names: Iterable[str]) -> list[Observer]:
    """Fresh observer instances, in the order named (duplicates once)."""
    names = list(dict.fromkeys(names))
    check_observers(names)
    return [OBSERVERS.create(name) for name in names]


def hashed_observers(names: Iterable[str]) -> list[str]:
    """The observers that change how a workload runs (not ``passive``): part of a study's definition.

    A name that is not registered counts as changing the runs (it is refused before anything runs anyway).
    """
    out = []
    for name in sorted(set(names)):
        try:
            passive = OBSERVERS.get(name).passive
        except (JobError, ImportError, AttributeError):
            passive = False
        if not passive:
            out.append(name)
    return out


__all__ = ["DEFAULT_OBSERVERS", "OBSERVERS", "Observer", "build_observers", "check_observers", "hashed_observers"]
