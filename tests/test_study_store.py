"""The study store: write-before-act, recovery of killed runs, refusal of a changed job, the writer lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.errors import InfrastructureError, StudyConflictError
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


def test_corrupt_store_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "db.sqlite"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(InfrastructureError) as info:
        StudyStore(bad)
    assert "cannot be opened" in str(info.value)
    assert bad.read_bytes().startswith(b"not a database")  # nothing overwritten
