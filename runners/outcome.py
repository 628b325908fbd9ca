"""One mapping from a process run's outcome to the failure taxonomy, shared by every target.

``classify_run`` answers "did this run fail, and how?" for a ``RunResult``: it could not start
(``infrastructure``), it ran out of time (``timeout``), it ran out of memory or crashed (``runtime``), the
workload said this configuration cannot run here (``constraints``), its result file is missing or unusable
(``runtime``), or the workload itself reported a wrong answer (``correctness``). ``None`` means the run
succeeded and its result is usable.

A target adds what only it knows as small hooks instead of re-implementing the order of the checks:
``failure`` hooks read a failed or odd run first (a training script's out-of-memory exit code, a failed
``torch.compile``), ``result_check`` looks at a parsed result (required keys, the domain's own notion of a
wrong answer), and ``timeout_hint`` adds a sentence to a timeout.
"""

from __future__ import annotations

import json
import math
import signal
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .base import RESULT_ENV, RunResult
from .types import Status

Outcome = tuple[Status, str]
FailureHook = Callable[[RunResult], Outcome | None]
ResultCheck = Callable[[dict[str, Any]], Outcome | None]


def last_line(text: str, limit: int = 300) -> str:
    """The last non-empty line of a text (a stderr tail), stripped and cut to ``limit`` characters."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:limit] if lines else ""


def exit_description(code: int | None) -> str:
    """``exit code 3`` or ``killed by SIGKILL`` (a negative return code is the signal that ended it)."""
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (often the kernel's out-of-memory killer)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


def result_problem(path: Path | None) -> str:
    """Why a run has no usable result JSON, reading the file the workload was told to write."""
    name = path.name if path is not None else "result.json"
    if path is None or not path.is_file():
        return f"the workload wrote no result JSON (to ${RESULT_ENV})"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return f"{name} is not valid JSON ({why})"
    if not isinstance(data, dict):
        kind = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
            type(data), "null" if data is None else type(data).__name__
        )
        return f"{name} is a JSON {kind}, not an object"
    return f"{name} could not be read by the runner"


def classify_run(
    result: RunResult,
    *,
    timeout_s: float | None = None,
    memory_mb: int | None = None,
    metric_key: str | None = None,
    constraint_exit_codes: Iterable[int] = (),
    result_path: Path | None = None,
    require_result: bool = True,
    failure: Sequence[FailureHook] = (),
    result_check: ResultCheck | None = None,
    timeout_hint: Callable[[RunResult], str] | None = None,
    what: str = "the workload",
) -> Outcome | None:
    """The status and one-line reason of a failed run, or None when it succeeded with a usable result.

    Order: could not start, stopped by a scheduler, timed out, over the memory limit, the target's own
    ``failure`` hooks, a constraint exit code, any other non-zero exit, no usable result (when
    ``require_result``), ``result_check``, ``correct: false`` in the result, no finite ``metric_key``.
    """
    if result.launch_error:
        return Status.INFRASTRUCTURE, f"could not start {what}: {result.launch_error}"
    if result.stopped_early:
        return Status.RUNTIME, f"stopped early by the scheduler after {len(result.reports)} report(s)"
    if result.timed_out:
        limit = f"the {timeout_s:g} s wall-time limit" if timeout_s else "the wall-time limit"
        text = f"timed out: exceeded {limit}"
        return Status.TIMEOUT, text + (timeout_hint(result) if timeout_hint else " (runner.timeout_s)")
    if result.memory_exceeded:
        limit = f"the runner's {memory_mb} MB limit" if memory_mb else "the runner's memory limit"
        return Status.RUNTIME, f"out of memory (the process tree exceeded {limit})"
    for hook in failure:
        outcome = hook(result)
        if outcome is not None:
            return outcome
    codes = set(constraint_exit_codes)
    if result.returncode is not None and result.returncode in codes:
        return Status.CONSTRAINTS, last_line(result.stderr_tail) or exit_description(result.returncode)
    if result.returncode != 0:
        line, code = last_line(result.stderr_tail), exit_description(result.returncode)
        signalled = result.returncode is not None and result.returncode < 0
        return Status.RUNTIME, f"{line} ({code})" if line and signalled else line or code
    if result.result is None:
        if require_result:
            return Status.RUNTIME, result_problem(result_path)
        return None
    if result_check is not None:
        outcome = result_check(result.result)
        if outcome is not None:
            return outcome
    if result.result.get("correct") is False:
        why = result.result.get("verify_error") or result.result.get("error") or ""
        return Status.CORRECTNESS, f"the workload reported correct=false{': ' + str(why) if why else ''}"
    if metric_key is not None:
        value = result.result.get(metric_key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return Status.RUNTIME, f"the result JSON has no finite number {metric_key!r}"
    return None
