"""tunesmith's own work per trial does not grow with the study (no timing: rows read and work counted).

A study of thousands of trials must not read every trial again on each round: the session keeps the
history in memory (``tools.history.StudyHistory``), strategies extend what they derive instead of
rebuilding it (``strategies.base.Prefix``), the LLM prompt shows a bounded slice, and the checkpoint file
is pruned. The speed itself is measured by ``benchmarks/overhead.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from tunesmith.agents.checkpoints import KEEP, PRUNE_EVERY
from tunesmith.agents.nodes.coder import code
from tunesmith.agents.nodes.execute import run
from tunesmith.agents.nodes.judge import _stop_for_patience, judge
from tunesmith.agents.nodes.planner import plan
from tunesmith.agents.nodes.reflector import reflect
from tunesmith.agents.strategies import STRATEGIES
from tunesmith.agents.strategies.llm_planner import PROMPT_BEST, PROMPT_LAST, prompt_history
from tunesmith.agents.study import drive, open_session
from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.base import Target
from tunesmith.runners.job import Objective, parse_job
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState, Verdict
from tunesmith.tools.history import StudyHistory
from tunesmith.tools.plugins import TARGETS
from tunesmith.tools.trials import pending_retries, strategy_history

PARAMS = tuple(Param(name=f"p{i}", kind="int", low=0, high=9, default=9) for i in range(1, 6))  # 100,000 configs


class _Workload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FastTarget(Target):
    """Five knobs 0..9; seconds = (sum + 1) / 1000, returned at once."""

    name = "fast"
    domain = "test"
    workload_model = _Workload
    kill_at = 0  # the evaluate call that raises KeyboardInterrupt (0: none), like a killed process

    def __init__(self, job) -> None:  # noqa: ANN001
        super().__init__(job)
        self.calls = 0

    def base_space(self) -> SearchSpace:
        return SearchSpace(params=PARAMS)

    def evaluate(self, candidate: Candidate, ctx) -> Measurement:  # noqa: ANN001
        self.calls += 1
        if self.calls == self.kill_at:
            raise KeyboardInterrupt
        return Measurement(status=Status.OK, samples=[(sum(candidate.config.values()) + 1) / 1000] * ctx.repeats)


TARGETS.register("fast", FastTarget)


def fast_job(trials: int, strategy: str = "random"):  # noqa: ANN201
    return parse_job({"name": "fast", "target": "fast", "workload": {}, "budget": {"trials": trials},
                      "measure": {"repeats": 1}, "strategy": {"name": strategy}, "llm": {"mode": "off"}})


def config(i: int) -> dict[str, int]:
    return {f"p{k + 1}": (i // 10**k) % 10 for k in range(5)}


def fill(store: StudyStore, study: str, n: int) -> None:
    """``n`` finished trials of distinct configs (the first is the baseline), each with a verdict."""
    for i in range(n):
        t = store.start_trial(study, Candidate(config=config(99999 - i), origin="baseline" if i == 0 else "sampler"))
        store.finish_trial(t.id, Measurement(status=Status.OK, samples=[1.0 + i / 1e5], wall_s=0.01))
        store.set_verdict(t.id, Verdict.BASELINE if i == 0 else Verdict.WORSE, "")


class Counting:
    """The store, counting the trial rows each read returns."""

    def __init__(self, store: StudyStore) -> None:
        self.store, self.rows, self.full_reads = store, 0, 0

    def _count(self, found: Any) -> Any:
        self.rows += len(found) if isinstance(found, list) else found is not None
        return found

    def trials(self, *args: Any, **kw: Any) -> list[Trial]:
        self.full_reads += 1
        return self._count(self.store.trials(*args, **kw))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if name in ("trials_since", "trial", "trial_by_number", "finished"):
            return lambda *a, **k: self._count(attr(*a, **k))
        return attr


def test_a_round_reads_a_bounded_number_of_rows_in_a_study_of_2000_trials(tmp_path: Path) -> None:
    job = fast_job(trials=2100)
    store = StudyStore(tmp_path / "tunesmith.db")
    store.open_study(job)
    fill(store, "fast", 2000)
    store.close()
    with open_session(job, tmp_path) as session:
        counting = Counting(session.store)
        session.store = counting
        session.history.store = counting
        state: dict[str, Any] = {"study": "fast", "incumbent": 1, "awaiting_confirmation": {}}
        per_round = []
        for _ in range(6):
            before = counting.rows
            for node in (plan, code, run, judge):  # as the graph runs them: re-measures, then the reflector
                state.update(node(state, session))
            while state["queue"]:
                state.update(run(state, session))
                state.update(judge(state, session))
            state.update(reflect(state, session))
            per_round.append(counting.rows - before)
        assert counting.full_reads == 1  # the history is loaded once
        assert per_round[0] >= 2000 and max(per_round[1:]) <= 16, per_round
        trials = session.store.store.trials("fast")
        assert len([t for t in trials if t.candidate.origin == "sampler"]) == 2005
        assert any(t.candidate.origin == "remeasure" for t in trials)  # the re-measure path ran too
        assert all(t.verdict is not None for t in trials if t.candidate.origin == "sampler")


def test_the_history_in_memory_equals_a_full_read(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "db.sqlite")
    store.open_study(fast_job(10))
    fill(store, "fast", 5)
    cut = store.start_trial("fast", Candidate(config=config(1), origin="sampler"))
    store.recover("fast")  # killed: interrupted, to be retried
    history = StudyHistory(store, "fast")

    def same() -> None:
        every = store.trials("fast")
        assert history.refresh() == every
        assert history.for_strategy() == strategy_history(every)
        assert history.pending_retries() == pending_retries(every)

    same()
    assert [c.key for c in history.pending_retries()] == [cut.candidate.key]
    running = store.start_trial("fast", Candidate(config=config(2), origin="sampler"))
    again = store.start_trial("fast", Candidate(config=config(1), origin="planner"))
    same()  # one running, the retry running
    store.finish_trial(again.id, Measurement(status=Status.OK, samples=[2.0]))
    store.start_trial("fast", Candidate(config=config(3), origin="remeasure"))
    same()  # the retried candidate finished: nothing left to retry
    assert history.pending_retries() == []
    store.finish_trial(running.id, Measurement(status=Status.RUNTIME, detail="crash"))
    store.set_verdict(running.id, Verdict.INVALID, "crash")
    history.changed(running.id)
    same()
    reads = history.rows_read
    history.refresh()
    assert history.rows_read - reads == 1  # only the re-measure still running is read again


def test_patience_counts_back_to_the_last_win_only() -> None:
    def trial(n: int, verdict: Verdict | None, origin: str = "sampler") -> Trial:
        return Trial(study="s", number=n, candidate=Candidate(config={"x": n}, origin=origin),  # type: ignore[arg-type]
                     state=TrialState.DONE, verdict=verdict)

    trials = [trial(0, Verdict.BASELINE), trial(1, Verdict.WORSE), trial(2, Verdict.BETTER),
              trial(3, Verdict.NOISE), trial(4, None, "remeasure"), trial(5, Verdict.WORSE)]
    assert _stop_for_patience(trials, 3) is None
    assert _stop_for_patience([*trials, trial(6, Verdict.WORSE)], 3) == (
        "no confirmed improvement in the last 3 trials (patience 3)")

    class Unreadable:  # a trial before the last win: counting back must stop before it
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("read a trial before the last win")

    assert _stop_for_patience([Unreadable(), *trials], 5) is None  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["random", "grid", "tpe"])
def test_strategies_extend_what_they_derive_instead_of_rebuilding_it(name: str) -> None:
    space = SearchSpace(params=PARAMS)
    strategy = STRATEGIES.create(name, space, Objective(), seed=1)
    fresh_copy = STRATEGIES.create(name, space, Objective(), seed=1)
    history = [Trial(study="s", number=i, candidate=Candidate(config=config(i)), state=TrialState.DONE,
                     measurement=Measurement(status=Status.OK, samples=[1.0 + i % 7])) for i in range(2000)]
    strategy.ask(history, 1)
    keyed = []
    original = strategy._keys._add
    strategy._keys._add = lambda keys, t: (keyed.append(t.number), original(keys, t))[1]
    for i in range(2000, 2005):
        history.append(Trial(study="s", number=i, candidate=strategy.ask(history, 1)[0], state=TrialState.DONE,
                             measurement=Measurement(status=Status.OK, samples=[0.5])))
    assert keyed == [2000, 2001, 2002, 2003]  # one new trial keyed per ask, not the whole history again
    assert [c.key for c in strategy.ask(history, 2)] == [c.key for c in fresh_copy.ask(history, 2)]
    assert [c.key for c in strategy.ask(history[:1500], 2)] == [c.key for c in fresh_copy.ask(history[:1500], 2)]


def test_the_llm_prompt_shows_a_bounded_slice_of_a_big_history() -> None:
    history = [Trial(study="s", number=i, candidate=Candidate(config=config(i), origin="baseline" if i == 0 else "sampler"),
                     state=TrialState.DONE,
                     measurement=Measurement(status=Status.OK, samples=[abs(i - 700) + 1.0]) if i % 5 else
                     Measurement(status=Status.RUNTIME, detail="crash"))
               for i in range(3000)]
    shown = prompt_history(history, minimize=True)
    numbers = [r["number"] for r in shown["history"]]
    assert len(numbers) <= 1 + PROMPT_BEST + PROMPT_LAST and numbers == sorted(numbers)
    assert 0 in numbers and 701 in numbers and 2999 in numbers  # the baseline, the best, the latest
    assert shown["omitted"] == 3000 - len(numbers) and shown["total"] == 3000
    assert "runtime" in shown["omitted_counts"] and "ok" in shown["omitted_counts"]
    small = prompt_history(history[:5], minimize=True)
    assert [r["number"] for r in small["history"]] == [0, 1, 2, 3, 4] and small["omitted"] == 0


def test_checkpoints_are_pruned_in_wal_mode_and_a_killed_study_resumes(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(FastTarget, "kill_at", 45)
    with pytest.raises(KeyboardInterrupt), open_session(fast_job(60), tmp_path) as session:
        drive(session)  # 45 runs in: several prunes behind it
    monkeypatch.setattr(FastTarget, "kill_at", 0)
    db = sqlite3.connect(tmp_path / "checkpoints.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # over 220 without pruning (five nodes per run); a prune every PRUNE_EVERY streamed steps keeps KEEP
    assert db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] <= KEEP + 2 * PRUNE_EVERY
    db.close()
    with open_session(fast_job(60), tmp_path) as session:
        assert session.resumed
        outcome = drive(session)
    firsts = [t for t in outcome.trials if t.candidate.origin not in ("remeasure", "final") and not t.interrupted]
    assert len(firsts) == 60 and len({t.candidate.key for t in firsts}) == 60  # nothing finished ran twice
    db = sqlite3.connect(tmp_path / "checkpoints.db")
    assert db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] <= KEEP
    db.close()


def test_a_step_commits_its_writes_with_its_checkpoint(tmp_path: Path) -> None:
    """put_writes leaves its rows for the next put to commit: one commit per graph step, nothing lost."""
    from langgraph.checkpoint.base import empty_checkpoint

    from tunesmith.agents.checkpoints import open_checkpointer

    def rows(table: str) -> int:
        con = sqlite3.connect(tmp_path / "c.db")
        try:
            return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        finally:
            con.close()

    with open_checkpointer(tmp_path / "c.db") as saver:
        config = {"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": "1"}}
        saver.put_writes(config, [("queue", [])], "task")
        assert saver.conn.in_transaction and rows("writes") == 0  # left open: not committed on its own
        saver.put(config, empty_checkpoint(), {}, {})
        assert not saver.conn.in_transaction and rows("writes") == 1 and rows("checkpoints") == 1


def test_a_trial_killed_before_its_verdict_is_judged_on_resume(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """One graph step per round: a kill between the run and the judge leaves a finished trial without a
    verdict; the resumed step hands it to the judge (it is not run again)."""
    import tunesmith.agents.nodes.evaluate as evaluate_node

    calls = {"n": 0}
    real_judge = evaluate_node.judge

    def judge_then_die(state, session):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # the sixth round's trial is stored, its verdict is not
        return real_judge(state, session)

    monkeypatch.setattr(evaluate_node, "judge", judge_then_die)
    with pytest.raises(KeyboardInterrupt), open_session(fast_job(12), tmp_path) as session:
        drive(session)
    unjudged = [t for t in StudyStore(tmp_path / "tunesmith.db").trials("fast")
                if t.verdict is None and t.candidate.origin != "remeasure"]
    assert len(unjudged) == 1 and unjudged[0].measurement is not None
    monkeypatch.setattr(evaluate_node, "judge", real_judge)
    with open_session(fast_job(12), tmp_path) as session:
        outcome = drive(session)
    firsts = [t for t in outcome.trials if t.candidate.origin not in ("remeasure", "final")]
    assert len(firsts) == 12 and len({t.candidate.key for t in firsts}) == 12  # nothing ran twice
    assert all(t.verdict is not None for t in firsts)
    assert next(t for t in firsts if t.id == unjudged[0].id).verdict is not None
