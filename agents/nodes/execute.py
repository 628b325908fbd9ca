"""Run node: hands the round's queued candidates to the session's executor, one stored trial each."""

from __future__ import annotations

from typing import Any

from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.base import Runner
from tunesmith.runners.executors import Executor, SerialExecutor
from tunesmith.runners.types import Candidate, Trial
from tunesmith.tools.trials import run_candidate


def executor_of(session: TuningSession) -> Executor[Any, Any]:
    """The session's executor (a serial one over the session's runner when it has none)."""
    if session.executor is None:
        session.executor = SerialExecutor(session.runner)
    return session.executor


def run(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """Run every queued candidate not already finished (idempotent after a resume).

    The budget holds however the executor runs them: a candidate starts only while trials (for
    first-time candidates) and wall time are left, so a batch never starts more trials than remain.
    """
    executor = executor_of(session)
    notice = executor.take_notice()
    if notice:
        session.emit("run", notice)
    finished: list[int] = []
    batch: list[Candidate] = []
    claimed: set[int] = set()  # re-measures already reused in this round
    for raw in state.get("queue", []):
        cand = Candidate.model_validate(raw)
        if cand.origin != "remeasure":
            done = session.store.finished(session.study, cand.key)
        else:  # a re-measure finished before a kill belongs to this round: reuse it too
            done = session.measured_remeasure(cand, state, claimed)
        if done is not None:  # measured before a crash: reuse, never repeat
            finished.append(done.id)  # type: ignore[arg-type]
            continue
        batch.append(cand)
    if not batch:
        return {"finished": finished, "queue": []}
    session.sync_budget()
    trials_left = session.budget.trials_left
    stopped: list[str] = []

    def may_start(cand: Candidate) -> bool:
        nonlocal trials_left
        counted = cand.origin != "remeasure"
        reason = session.budget.exhausted(count_trials=False)
        if reason is None and counted and trials_left <= 0:
            reason = f"trial budget spent ({session.budget.budget.trials} trials)"
        if reason:
            stopped.append(reason)
            return False
        trials_left -= counted
        session.emit("run", f"running {describe(cand)}", config=cand.config, origin=cand.origin)
        return True

    def run_one(cand: Candidate, runner: Runner) -> Trial:
        return run_candidate(
            session.store, session.study, session.target, runner, cand,
            scratch_root=session.scratch_root, repeats=session.job.measure.repeats, ledger=session.ledger,
        )

    def on_done(cand: Candidate, trial: Trial) -> None:
        session.remember(trial)  # the judge reads it from memory
        session.emit("run", summarize(trial, session.job.objective.metric), trial=trial.number,
                     status=trial.measurement.status.value if trial.measurement else None)

    # Re-measures are compared with each other: they run one at a time on one device whatever the executor.
    first = [c for c in batch if c.origin != "remeasure"]
    again = [c for c in batch if c.origin == "remeasure"]
    trials = executor.run_batch(first, run_one, may_start=may_start, on_done=on_done) if first else []
    if again:
        paired = SerialExecutor(executor.comparison_runner())
        trials += paired.run_batch(again, run_one, may_start=may_start, on_done=on_done)
    finished += [t.id for t in trials]  # type: ignore[misc]
    if stopped:
        session.emit("run", f"not running the rest of the round: {stopped[0]}")
    return {"finished": finished, "queue": []}


def describe(cand: Candidate) -> str:
    return ", ".join(f"{k}={v}" for k, v in cand.config.items()) + ("" if cand.origin != "remeasure" else " (re-measure)")


def summarize(trial: Trial, metric: str) -> str:
    m = trial.measurement
    if m is None:
        return f"trial #{trial.number}: no measurement"
    if not m.ok:
        return f"trial #{trial.number}: {m.status.value} — {m.detail}"
    if not m.samples:
        return f"trial #{trial.number}: ok (untimed) — {m.detail}"
    return f"trial #{trial.number}: {metric} median {m.median:.4g} (IQR {m.iqr:.2g}, n={len(m.samples)})"
