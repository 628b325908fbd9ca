"""The study store: write-before-act, recovery of killed runs, refusal of a changed job, the writer lock,
and the ``StudyStorage`` conformance tests every backend must pass."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tunesmith.knowledge.storage import StudyStorage
from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.errors import InfrastructureError, StudyConflictError, TunesmithError
from tunesmith.runners.job import parse_job
from tunesmith.runners.types import Candidate, Measurement, Reflection, Status, TrialState, Verdict


def job(**workload):
    return parse_job({"name": "s1", "target": "replay", "workload": workload})


def test_trial_is_running_before_it_finishes(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "db.sqlite")
    store.open_study(job())
    t = store.start_trial("s1", Candidate(config={"a": 1}))
    assert store.trial(t.id).state == TrialState.RUNNING and t.number == 1
    done = store.finish_trial(t.id, Measurement(status=Status.OK, samples=[1.0, 2.0]))
    assert done.state == TrialState.DONE and done.measurement.median == 1.5
    assert store.finished("s1", t.candidate.key).id == t.id


def test_recover_marks_running_trials_interrupted(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "db.sqlite")
    store.open_study(job())
    t = store.start_trial("s1", Candidate(config={"a": 1}))
    store.close()
    store = StudyStore(tmp_path / "db.sqlite")
    recovered = store.recover("s1")
    assert [r.id for r in recovered] == [t.id]
    assert store.trial(t.id).state == TrialState.FAILED
    assert store.finished("s1", t.candidate.key) is None  # interrupted runs do not count as finished
    assert store.trials("s1", include_interrupted=False) == []


def test_changed_definition_is_refused_with_the_changed_field(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "db.sqlite")
    store.open_study(job(size_mb=4))
    _, resumed = store.open_study(job(size_mb=4))
    assert resumed
    with pytest.raises(StudyConflictError) as info:
        store.open_study(job(size_mb=8))
    assert "workload.size_mb" in str(info.value) and "--restart" in str(info.value)


def test_archive_keeps_data(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "db.sqlite")
    store.open_study(job())
    store.start_trial("s1", Candidate(config={"a": 1}))
    new = store.archive("s1")
    assert len(store.trials(new)) == 1 and store.trials("s1") == []
    store.open_study(job(size_mb=9))  # the name is free again


def test_writer_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "db.sqlite")
    store.lock("s1")
    code = (
        "import sys; from tunesmith.knowledge.study_store import StudyStore\n"
        f"s = StudyStore({str(tmp_path / 'db.sqlite')!r})\n"
        "try:\n    s.lock('s1')\nexcept Exception as e:\n    print(e); sys.exit(3)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 3 and str(os.getpid()) in res.stdout
    store.close()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0


def test_verdicts_events_reflections(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "db.sqlite")
    store.open_study(job())
    t = store.start_trial("s1", Candidate(config={"a": 1}))
    store.set_verdict(t.id, Verdict.BETTER, "because")
    assert store.trial(t.id).verdict == Verdict.BETTER
    store.add_event("s1", "planner", "hello", {"x": 1})
    assert store.events("s1")[0]["data"] == {"x": 1}
    store.add_reflection(Reflection(study="s1", workload="io/checkpoint", hardware="cpu", insight="x"))
    assert store.reflections(workload_prefix="io")[0].insight == "x"
    assert store.reflections(workload_prefix="kernel") == []


def test_single_statement_writes_return_the_stored_row_and_number_trials_in_order(tmp_path: Path) -> None:
    """start_trial/finish_trial write one statement each and hand back exactly the row a read returns."""
    store = StudyStore(tmp_path / "db.sqlite")
    store.open_study(job())
    store.open_study(parse_job({"name": "s2", "target": "replay", "workload": {}}))
    started = [store.start_trial("s1", Candidate(config={"a": i})) for i in range(3)]
    assert [t.number for t in started] == [1, 2, 3] and store.start_trial("s2", Candidate(config={"a": 0})).number == 1
    assert all(t == store.trial(t.id) and t.state == TrialState.RUNNING for t in started)
    done = store.finish_trial(started[1].id, Measurement(status=Status.OK, samples=[1.0]))
    assert done == store.trial(started[1].id) and done.state == TrialState.DONE and done.finished_at
    store.set_verdict(done.id, Verdict.NOISE, "same")
    assert store.trial(done.id).explanation == "same"
    with ThreadPoolExecutor(4) as pool:  # threads sharing the store still get distinct, consecutive numbers
        more = list(pool.map(lambda i: store.start_trial("s1", Candidate(config={"a": 10 + i})), range(20)))
    assert sorted(t.number for t in more) == list(range(4, 24))
    with pytest.raises(TypeError):  # no such trial: nothing comes back
        store.finish_trial(10_000, Measurement(status=Status.OK, samples=[1.0]))
    store.close()


def test_corrupt_store_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "db.sqlite"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(InfrastructureError) as info:
        StudyStore(bad)
    assert "cannot be used" in str(info.value) and "\n" not in str(info.value)
    assert bad.read_bytes().startswith(b"not a database")  # nothing overwritten


# -- conformance: every StudyStorage implementation ------------------------------------------------------
# A new backend adds one entry here: a factory from a fresh folder to an open store (its own folder per call).
IMPLEMENTATIONS: list = [
    pytest.param(lambda folder: StudyStore(folder / "tunesmith.db"), id="sqlite"),
]
Factory = Callable[[Path], StudyStorage]


@pytest.mark.parametrize("make", IMPLEMENTATIONS)
def test_conformance_lifecycle(tmp_path: Path, make: Factory) -> None:
    store = make(tmp_path)
    assert isinstance(store, StudyStorage)
    info, resumed = store.open_study(job(size_mb=4), job_path="j.toml")
    assert not resumed and info.name == "s1" and info.status == "running" and info.job_path == "j.toml"
    assert store.open_study(job(size_mb=4))[1] is True
    with pytest.raises(StudyConflictError):
        store.open_study(job(size_mb=5))
    store.set_status("s1", "finished", llm_mode="offline")
    assert store.study("s1").status == "finished" and store.study("s1").llm_mode == "offline"
    store.save_usage("s1", {"llm": {"tokens": 3}})
    assert store.study("s1").usage == {"llm": {"tokens": 3}}
    assert [s.name for s in store.studies()] == ["s1"]
    with pytest.raises(StudyConflictError):
        store.study("nope")
    store.close()


@pytest.mark.parametrize("make", IMPLEMENTATIONS)
def test_conformance_trials(tmp_path: Path, make: Factory) -> None:
    store = make(tmp_path)
    store.open_study(job())
    a = store.start_trial("s1", Candidate(config={"a": 1}, origin="baseline"))
    b = store.start_trial("s1", Candidate(config={"a": 2}))
    assert (a.number, b.number) == (1, 2) and store.trial(b.id).state == TrialState.RUNNING
    store.finish_trial(a.id, Measurement(status=Status.OK, samples=[1.0, 3.0]))
    store.finish_trial(b.id, Measurement(status=Status.RUNTIME, detail="boom"))
    store.set_verdict(a.id, Verdict.BASELINE, "the default")
    assert store.trial(a.id).verdict == Verdict.BASELINE and store.trial(b.id).state == TrialState.FAILED
    assert store.trial_by_number("s1", 2).id == b.id and store.trial_by_number("s1", 9) is None
    assert [t.number for t in store.trials("s1")] == [1, 2] and store.count_trials("s1") == 2
    assert [t.id for t in store.trials_since("s1", a.id)] == [b.id]
    assert [t.id for t in store.trials_since("s1", 0, limit=1)] == [a.id]
    assert store.finished("s1", a.candidate.key).id == a.id
    c = store.start_trial("s1", Candidate(config={"a": 3}))
    store.close()
    store = make(tmp_path)  # the writer died with trial 3 running
    assert [t.id for t in store.recover("s1")] == [c.id]
    again = store.trial(c.id)
    assert again.interrupted and again.state == TrialState.FAILED and not store.trial(a.id).interrupted
    assert store.finished("s1", c.candidate.key) is None
    assert [t.number for t in store.trials("s1", include_interrupted=False)] == [1, 2]
    assert [t.number for t in store.trials_since("s1", 0, include_interrupted=False)] == [1, 2]
    archived = store.archive("s1")
    assert archived.startswith("s1@") and store.count_trials(archived) == 3 and store.trials("s1") == []
    store.close()


@pytest.mark.parametrize("make", IMPLEMENTATIONS)
def test_conformance_events_reflections_and_lock(tmp_path: Path, make: Factory) -> None:
    store, other = make(tmp_path), make(tmp_path)
    store.open_study(job())
    store.add_event("s1", "judge", "verdict", {"trial": 1})
    assert [(e["node"], e["data"]) for e in store.events("s1")] == [("judge", {"trial": 1})]
    store.add_reflection(Reflection(study="s1", workload="io/x", hardware="cpu", insight="i"))
    assert [r.insight for r in store.reflections(study="s1")] == ["i"] and store.reflections(study="s2") == []
    store.add_reflection(Reflection(study="s1", workload="io/y", hardware="cpu", insight="j"))
    assert [r.insight for r in store.reflections(workload_prefix="io/", limit=1)] == ["i"]  # oldest first
    assert [r.insight for r in store.reflections(study="s1", limit=5)] == ["i", "j"]
    assert other.lock_holder("s1") is None
    store.lock("s1")
    assert other.lock_holder("s1") == os.getpid()
    with pytest.raises(InfrastructureError, match=f"being run by pid {os.getpid()}"):
        other.lock("s1")
    store.close()
    assert other.lock_holder("s1") is None
    other.lock("s1")
    other.close()


def test_interface_covers_every_store_call() -> None:
    """The rest of the code calls only what StudyStorage declares, so another backend can replace SQLite."""
    root = Path(__file__).resolve().parents[1]
    used: set[str] = set()
    for folder in ("agents", "knowledge", "tools", "runners", "kernels"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            # In the modules that work with the knowledge (vector) store, ``store`` names that store instead.
            if path.name not in ("study_store.py", "storage.py") and "KnowledgeStore" not in text:
                used |= set(re.findall(r"\bstore\.([a-z_]+)\b", text))
    declared = set(StudyStorage.__abstractmethods__) | {"read_only"}
    assert used and used <= declared, sorted(used - declared)
    assert not StudyStore.__abstractmethods__


def test_name_that_is_not_a_file_name_is_refused_before_a_lock_file(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "db.sqlite")
    for bad in ("..", ".hidden", "a/b", ""):
        with pytest.raises(TunesmithError):
            store.lock(bad)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")) == []


def test_read_only_store_never_writes(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "db.sqlite")
    store.open_study(job())
    store.start_trial("s1", Candidate(config={"a": 1}))
    store.close()
    digest = hashlib.sha256((tmp_path / "db.sqlite").read_bytes()).hexdigest()
    ro = StudyStore(tmp_path / "db.sqlite", read_only=True)
    assert ro.read_only and [t.number for t in ro.trials("s1")] == [1]
    with pytest.raises(InfrastructureError, match="read-only"):
        ro.lock("s1")
    with pytest.raises(InfrastructureError):
        ro.set_status("s1", "finished")
    ro.close()
    assert hashlib.sha256((tmp_path / "db.sqlite").read_bytes()).hexdigest() == digest
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(InfrastructureError, match="empty"):
        StudyStore(tmp_path / "empty.db", read_only=True)
    assert (tmp_path / "empty.db").read_bytes() == b""


def test_foreign_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "db.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE studies (id INTEGER, title TEXT)")
    con.commit()
    con.close()
    before = path.read_bytes()
    for read_only in (False, True):
        with pytest.raises(InfrastructureError, match="not a tunesmith study store") as info:
            StudyStore(path, read_only=read_only)
        assert "studies" in str(info.value)
    assert path.read_bytes() == before


def test_events_are_written_with_the_next_trial_write_in_one_transaction(tmp_path: Path) -> None:
    """Events wait for the next write (one commit per trial write, not one per event); reading them, or
    closing the store, writes them at once; a rolled-back write keeps them for the next one."""
    import sqlite3

    store = StudyStore(tmp_path / "t.db")
    store.open_study(job())

    def on_disk() -> list[str]:
        con = sqlite3.connect(tmp_path / "t.db")
        try:
            return [r[0] for r in con.execute("SELECT message FROM events ORDER BY id")]
        finally:
            con.close()

    store.add_event("s1", "planner", "try a")
    store.add_event("s1", "run", "running a")
    assert on_disk() == []  # not yet: no commit of its own
    t = store.start_trial("s1", Candidate(config={"a": 1}, origin="planner"))
    assert on_disk() == ["try a", "running a"]  # written with the trial, in order
    store.add_event("s1", "run", "trial #1 done")
    store.finish_trial(t.id, Measurement(status=Status.OK, samples=[1.0], wall_s=0.1))
    store.add_event("s1", "judge", "verdict")
    assert [e["message"] for e in store.events("s1")][-2:] == ["trial #1 done", "verdict"]  # a read flushes
    store.add_event("s1", "reflector", "lesson")
    with pytest.raises(RuntimeError), store._tx():
        raise RuntimeError("rolled back")
    assert on_disk()[-1] == "verdict"
    store.close()  # closing writes what is left
    assert on_disk()[-1] == "lesson"
