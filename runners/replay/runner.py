"""Record real runs and replay them: strategies, schedulers and targets tested without the hardware.

``RecordingRunner`` runs through a real runner and appends every (key -> RunResult) to a JSON-lines
file; ``ReplayRunner`` answers later runs from such a file (or a dict) without starting anything. The
key is a stable hash of the command and the spec's environment additions. Several recordings under one
key (repeats of one measurement) are replayed in order, then from the start again.

Neither is a job's ``[runner] kind``: a replayed run was measured elsewhere, and its key holds the scratch
paths in the command, so they are built in code (tests, benchmarks) around a recording made for them.
To replay a recorded sweep of configurations in a study, use the ``replay`` target instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..base import Runner, RunResult, RunSpec
from ..errors import JobError

NO_RECORDING = "no recording for this run; fix: record it first with RecordingRunner"


def replay_key(argv: list[str], env: Mapping[str, str]) -> str:
    """A stable hash of (argv, environment additions): equal runs share it across processes."""
    blob = json.dumps({"argv": list(argv), "env": dict(env)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def spec_key(spec: RunSpec) -> str:
    """The replay key of a RunSpec."""
    return replay_key(spec.argv, spec.env)


def load_recordings(path: str | Path) -> dict[str, list[RunResult]]:
    """Read a recording file (one JSON object per line: key, argv, env, result) into key -> results.

    Raises JobError (one line) if the file cannot be read or a JSON line is not a recording; lines that
    are not JSON at all (torn by a kill while the recorder wrote them) are skipped.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise JobError(
            f"cannot read recording file {str(p)!r} ({reason})", "record runs first with RecordingRunner"
        ) from None
    out: dict[str, list[RunResult]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # blank, or torn by a kill mid-write (a cut-off object is never valid JSON)
        try:
            out.setdefault(str(record["key"]), []).append(RunResult.model_validate(record["result"]))
        except (KeyError, TypeError, ValidationError) as exc:
            raise JobError(
                f"{p.name} line {number} is not a run recording ({type(exc).__name__})",
                "record it with RecordingRunner or remove the line",
            ) from None
    return out


def _as_results(value: RunResult | dict[str, Any] | Iterable[RunResult | dict[str, Any]]) -> list[RunResult]:
    items = [value] if isinstance(value, (RunResult, dict)) else list(value)
    return [r if isinstance(r, RunResult) else RunResult.model_validate(r) for r in items]


class ReplayRunner(Runner):
    """Answers runs from recorded RunResults instead of starting processes.

    ``recordings`` is a recording file written by RecordingRunner, or a mapping of key (see
    ``replay_key``) to one RunResult or a list of them (dicts are validated). Recorded reports are passed
    to ``spec.on_report``; if it returns False the replay stops there, like a killed run: the reports up
    to that point, ``stopped_early``, no result and a proportional share of the recorded wall time.
    """

    name = "replay"

    def __init__(self, recordings: str | Path | Mapping[str, Any] | None = None) -> None:
        if recordings is None:
            self.recordings: dict[str, list[RunResult]] = {}
        elif isinstance(recordings, (str, Path)):
            self.recordings = load_recordings(recordings)
        else:
            self.recordings = {str(k): _as_results(v) for k, v in recordings.items()}
        self._next: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, spec: RunSpec, result: RunResult) -> str:
        """Add one recording for ``spec``; returns its key."""
        key = spec_key(spec)
        with self._lock:
            self.recordings.setdefault(key, []).append(result)
        return key

    def run(self, spec: RunSpec) -> RunResult:
        key = spec_key(spec)
        with self._lock:
            results = self.recordings.get(key)
            if not results:
                return RunResult(returncode=None, launch_error=NO_RECORDING)
            index = self._next.get(key, 0)
            self._next[key] = (index + 1) % len(results)
        return self._replay(results[index].model_copy(deep=True), spec)

    @staticmethod
    def _replay(recorded: RunResult, spec: RunSpec) -> RunResult:
        if spec.on_report is None:
            return recorded
        for i, report in enumerate(recorded.reports):
            if spec.on_report(report) is False:
                share = (i + 1) / len(recorded.reports)
                return recorded.model_copy(
                    update={
                        "returncode": -signal.SIGTERM,
                        "stopped_early": True,
                        "result": None,
                        "reports": recorded.reports[: i + 1],
                        "wall_s": recorded.wall_s * share,
                    }
                )
        return recorded


class RecordingRunner(Runner):
    """Runs through ``inner`` and appends each (key -> RunResult) as one JSON line to ``path``.

    The line is flushed and fsync'd before ``run`` returns, so a killed study keeps what it measured.
    """

    name = "recording"

    def __init__(self, inner: Runner, path: str | Path) -> None:
        self.inner = inner
        self.path = Path(path)
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        return self.inner.available()

    def run(self, spec: RunSpec) -> RunResult:
        result = self.inner.run(spec)
        record = {
            "key": spec_key(spec),
            "argv": spec.argv,
            "env": spec.env,
            "runner": self.inner.name,
            "result": result.model_dump(mode="json"),
        }
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+", encoding="utf-8") as fh:
                if fh.tell() > 0:
                    fh.seek(fh.tell() - 1)
                    if fh.read(1) != "\n":
                        line = "\n" + line  # never append to a line torn by a kill
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        return result
