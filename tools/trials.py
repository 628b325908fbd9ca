"""Typed functions the agents call to run candidates and read a study's trials."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.base import Runner, Target
from tunesmith.runners.changes import ChangeLedger
from tunesmith.runners.context import TrialContext
from tunesmith.runners.observers import Observer
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState
from tunesmith.tools.history import in_strategy_history


def run_candidate(
    store: StudyStore, study: str, target: Target, runner: Runner, candidate: Candidate,
    *, scratch_root: Path, repeats: int, keep_scratch: bool = False,
    ledger: ChangeLedger | None = None, observers: Sequence[Observer] | None = None,
) -> Trial:
    """Store the trial as running, evaluate it in its own scratch folder, store the measurement.

    The target gets a ``TrialContext`` with the runner, the folder, ``repeats`` and the job's warm-up,
    ``ledger`` (the session's change ledger: every outside change is recorded there and undone) and the
    observers: ``observers=None`` attaches the job's ``[measure] observers`` (fresh ones per trial), ``()``
    none. Their metrics and notes are added to the measurement, failed or not.

    A bug in the target or a dead runner becomes an ``infrastructure`` measurement, never a crash of the
    study; Ctrl-C leaves the trial marked interrupted (retried on resume) and propagates.
    """
    trial = store.start_trial(study, candidate)
    workdir = scratch_root / study / f"trial-{trial.number:04d}"
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ctx: TrialContext | None = None
    try:
        ctx = TrialContext.for_job(target.job, runner, workdir, repeats=repeats, ledger=ledger,
                                   observers=observers, trial=trial.number)
        measurement = target.evaluate(candidate, ctx)
    except KeyboardInterrupt:
        store.recover(study)
        raise
    except Exception as exc:  # noqa: BLE001 - the study records the failure and continues
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        measurement = Measurement(status=Status.INFRASTRUCTURE, detail=f"{type(exc).__name__}: {first}"[:500])
    if ctx is not None:
        measurement = ctx.finish(measurement)
    if not measurement.wall_s:
        measurement = measurement.model_copy(update={"wall_s": time.perf_counter() - start})
    if not measurement.fingerprint:
        measurement = measurement.model_copy(update={"fingerprint": target.fingerprint()})
    if not keep_scratch and measurement.status == Status.OK:
        shutil.rmtree(workdir, ignore_errors=True)
    return store.finish_trial(trial.id, measurement)  # type: ignore[arg-type]


def strategy_history(trials: Sequence[Trial]) -> list[Trial]:
    """What strategies see: finished, first-time evaluations (no interrupted runs, no re-measures).

    A running study keeps this view in memory instead (``tunesmith.tools.history.StudyHistory``).
    """
    return [t for t in trials if in_strategy_history(t)]


def _interrupted(trial: Trial) -> bool:
    return trial.interrupted  # the store's column, set when a killed or stopped run was recovered


def pending_retries(trials: Sequence[Trial]) -> list[Candidate]:
    """Candidates whose only runs were interrupted by a killed process: to run again on resume."""
    finished = {t.candidate.key for t in trials if not t.interrupted and t.state != TrialState.RUNNING}
    out: dict[str, Candidate] = {}
    for t in trials:
        if t.interrupted and t.candidate.key not in finished:
            out.setdefault(t.candidate.key, t.candidate)
    return list(out.values())
