"""Running a study end to end: build the session from a job file, drive the graph, close everything.

This is the one entry point the CLI, the chat and the CI gate call; none of them re-implements the loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from tunesmith.agents.budget import BudgetTracker
from tunesmith.agents.checkpoints import PRUNE_EVERY, open_checkpointer, prune
from tunesmith.agents.graph import build_graph
from tunesmith.agents.session import Observer, TuningSession
from tunesmith.agents.strategies.base import Strategy
from tunesmith.knowledge.storage import check_study_name
from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.base import Target
from tunesmith.runners.changes import ChangeLedger
from tunesmith.runners.containment import reap_leftovers
from tunesmith.runners.errors import InfrastructureError, JobError, TunesmithError
from tunesmith.runners.executors import build_executor
from tunesmith.runners.job import Job, StrategyConfig, load_job
from tunesmith.runners.selection import Rules, StudyResult, incumbent_trial, study_result, verdict_records
from tunesmith.runners.types import Status, Trial
from tunesmith.tools.plugins import TARGETS, runner_registry


@dataclass
class StudyOutcome:
    """What a finished (or stopped) study found."""

    study: str
    stop_reason: str
    llm_description: str
    baseline: Trial | None
    best: Trial | None
    trials: list[Trial]
    resumed: bool
    result: StudyResult | None = None  # baseline, best, the reported speedup (selection.study_result)


def prepare_job(path: str | Path, *, trials: int | None = None, strategy: str | None = None) -> Job:
    """Load the job file and apply the command line's overrides; every mistake is one ``JobError`` line.

    Nothing is stored here: a bad name, trial count or strategy is refused before any study exists.
    """
    job = load_job(path)
    if job.manual_space is not None:  # [space] from_manual: parameters taken from an ingested manual
        from tunesmith.knowledge.manuals.space import apply_manual_space

        job = apply_manual_space(job)
    check_study_name(job.name, Path(path).name)
    if trials is not None:
        if trials < 1:
            raise JobError(f"--trials {trials}: the trial budget must be at least 1", "pass --trials 1 or more")
        job = job.model_copy(update={"budget": job.budget.model_copy(update={"trials": trials})})
    if strategy is not None:
        names = strategy_names()
        if strategy not in names:
            raise JobError(f"--strategy {strategy!r} is not a strategy", f"use one of {', '.join(names)}")
        job = job.model_copy(update={"strategy": job.strategy.model_copy(update={"name": strategy})})
    return job


def strategy_names() -> list[str]:
    """The names ``[strategy] name`` and ``--strategy`` accept."""
    return list(get_args(StrategyConfig.model_fields["name"].annotation))


def build_strategy(job: Job, target: Target, session_hooks: dict[str, Any]) -> Strategy:
    """The job's strategy; "planner" is the LLM planner when an LLM is there, else the offline planner."""
    from tunesmith.agents.strategies import STRATEGIES
    from tunesmith.runners.admissibility import feasibility

    space = target.space()
    common = dict(seed=job.strategy.seed, baseline=target.baseline().config, rules=target.rules(),
                  feasible=feasibility(space, target))  # what the coder would reject is never proposed
    name = job.strategy.name
    if name != "planner":
        return STRATEGIES.create(name, space, job.objective, **common)
    offline = STRATEGIES.create("offline_planner", space, job.objective, **common, budget=job.budget.trials,
                                priorities=getattr(target, "priorities", None),  # e.g. from an I/O trace
                                lessons=session_hooks.get("lesson_hits"))  # earlier studies' lessons, as priors
    llm = session_hooks.get("llm")
    if llm is None:
        return offline
    from tunesmith.agents.strategies.llm_planner import LLMPlannerStrategy

    return LLMPlannerStrategy(space, job.objective, llm=llm, fallback=offline, describe=target.describe(),
                              lessons=session_hooks["lessons"], tokens_left=session_hooks["tokens_left"],
                              on_note=session_hooks["on_note"], trials_left=session_hooks.get("trials_left", lambda: None),
                              **common)


def _incumbent(trials: list[Trial]) -> int | None:
    best = incumbent_trial(trials)
    return best.id if best else None


@contextmanager
def open_session(job: Job, state_dir: Path, *, llm_mode: str | None = None, restart: bool = False,
                 observers: list[Observer] | None = None, job_path: str = "",
                 llm_setup: Any = None) -> Iterator[TuningSession]:
    """Build every live object of a study and close them all (and undo outside changes) on exit.

    ``llm_setup`` injects an LLM (tests use a scripted one); otherwise the job's [llm] and ``llm_mode`` decide.
    """
    from tunesmith.agents.llm.config import resolve_llm

    state_dir = state_dir.resolve()  # children run in their own scratch folders: paths must be absolute
    with ExitStack() as stack:
        target = TARGETS.create(job.target, job)
        stack.callback(target.close)
        target.space()
        target.baseline()
        target.preflight()
        runner = runner_registry().create(job.runner.kind)
        stack.callback(runner.close)  # its reused cgroups go when the study ends, not at interpreter exit
        ok, why = runner.available()
        if not ok:
            raise InfrastructureError(f"runner {job.runner.kind!r} cannot run here: {why}", "pick another [runner] kind")
        executor = build_executor(job.runner, runner, target)  # how a round's candidates run (one line if bad)
        state_dir.mkdir(parents=True, exist_ok=True)
        store = StudyStore(state_dir / "tunesmith.db")
        stack.callback(store.close)
        store.lock(job.name)  # before anything changes: a study another process runs is left alone
        ledger = ChangeLedger(state_dir / "changes.jsonl")
        ledger.restore_all()  # leftovers of a killed run come back first
        reap_leftovers(state_dir / "scratch")  # end the processes a killed run left behind
        runner.attach(job, state_dir / "scratch")  # secrets it may pass; where it records live runs
        stack.callback(ledger.restore_all)
        if restart and any(s.name == job.name for s in store.studies()):
            store.archive(job.name)
        info, resumed = store.open_study(job, job_path=job_path)
        store.recover(job.name)
        from tunesmith.agents.llm import TokenLedger

        usage = info.usage.get("llm") if resumed else None
        ledger_llm = TokenLedger.from_dict(usage) if usage else None  # a resumed study keeps counting
        setup = llm_setup or stack.enter_context(
            resolve_llm(job.llm, llm_mode, ledger=ledger_llm, token_budget=job.budget.llm_tokens))
        session = TuningSession(job=job, target=target, runner=runner, store=store, strategy=None,  # type: ignore[arg-type]
                                executor=executor,
                                budget=BudgetTracker(job.budget), state_dir=state_dir, info=info, resumed=resumed,
                                llm=setup.client, llm_mode=setup.mode, llm_description=setup.description,
                                observers=list(observers or []), ledger=ledger)
        hooks = {"llm": setup.client, "on_note": lambda msg: session.emit("planner", msg),
                 "tokens_left": lambda: session.budget.tokens_left, "trials_left": lambda: session.budget.trials_left,
                 "lessons": session.lessons, "lesson_hits": session.lesson_hits}  # stored reflections, plus the knowledge store's (retrieved once)
        session.strategy = build_strategy(job, target, hooks)
        store.set_status(job.name, "running", llm_mode=setup.description)
        try:
            yield session
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, a closed output pipe: resumable
            _mark_stopped(store, job.name, "interrupted")
            raise
        except Exception:
            _mark_stopped(store, job.name, "failed")
            raise


def _mark_stopped(store: StudyStore, name: str, status: str) -> None:
    """Record why a running study stopped, so `tune list` does not keep calling it running."""
    with suppress(TunesmithError, sqlite3.Error):  # a damaged store is reported by the caller's error
        if store.study(name).status == "running":
            store.set_status(name, status)


def drive(session: TuningSession) -> StudyOutcome:
    """Run (or resume) the agent graph to the end, checkpointed in SQLite (old checkpoints pruned)."""
    with open_checkpointer(session.state_dir / "checkpoints.db") as saver:
        graph = build_graph(session, saver)
        thread = f"{session.study}:{session.job.definition_hash()}"
        config = {"configurable": {"thread_id": thread}, "recursion_limit": 100_000}
        snapshot = graph.get_state(config)
        session.emit("session", f"{'resuming' if session.resumed else 'starting'} study {session.study!r}; "
                     f"LLM mode: {session.llm_description}; strategy: {session.strategy.name}")
        if snapshot.next and set(snapshot.next) <= set(graph.nodes):
            start: dict[str, Any] | None = None  # resume where the graph stopped
            # (a checkpoint of an older graph layout names nodes this one lacks: start over from the store)
        else:
            start = {"study": session.study, "round": 0, "proposals": [], "queue": [], "finished": [],
                     "judged": [], "incumbent": _incumbent(session.trials()), "awaiting_confirmation": {},
                     "stop_reason": None}
        final: dict[str, Any] = {}
        # durability="sync": each step's checkpoint is written in this thread before the next step starts.
        # LangGraph's default ("async") writes it from a background thread, whose contention with this one
        # for the interpreter lock costs more per trial than the write; a resume needs nothing more.
        steps = graph.stream(start, config, stream_mode="values", durability="sync")
        for step, values in enumerate(steps, start=1):
            final = values
            if step % PRUNE_EVERY == 0:
                prune(saver, thread)
        prune(saver, thread)
    trials = session.store.trials(session.study)
    result = study_result(trials, Rules.from_job(session.job), verdict_records(session.store.events(session.study)))
    return StudyOutcome(
        study=session.study, stop_reason=final.get("stop_reason") or "done",
        llm_description=session.llm_description,
        baseline=result.baseline, best=result.best, trials=trials, resumed=session.resumed, result=result)


def baseline_failed(outcome: StudyOutcome) -> bool:
    """The default configuration ran but fails its correctness check (exit code 3)."""
    b = outcome.baseline
    return b is not None and b.measurement is not None and b.measurement.status == Status.CORRECTNESS


def baseline_unmeasured(outcome: StudyOutcome) -> bool:
    """The default configuration never produced a valid measurement for another reason (exit code 5).

    A crash, a timeout, a missing or unreadable metric, a refused config, or no baseline run at all.
    A correct but untimed default (the Triton interpreter without a GPU) is measured.
    """
    b = outcome.baseline
    if b is None or b.measurement is None:
        return True
    return b.measurement.status not in (Status.OK, Status.CORRECTNESS)


def failure_summary(trials: list[Trial]) -> str:
    """How the first-time evaluations failed, by status with the first reason of each, e.g.
    ``12 runtime (the result JSON has no finite number 'secnds'), 1 timeout (timed out after 60 s)``."""
    counts: dict[str, list[Any]] = {}
    for t in trials:
        m = t.measurement
        if t.interrupted or t.candidate.origin == "remeasure" or m is None or m.ok:
            continue
        entry = counts.setdefault(m.status.value, [0, m.detail.strip().splitlines()[0] if m.detail.strip() else ""])
        entry[0] += 1
    return ", ".join(f"{n} {status}" + (f" ({why[:160]})" if why else "") for status, (n, why) in counts.items())
