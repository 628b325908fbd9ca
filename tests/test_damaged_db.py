"""A damaged or foreign study database: one line and exit code 4 from every command, and reads never write."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from pathlib import Path

import pytest

from tests.test_cli import make_job, tune
from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.job import parse_job
from tunesmith.runners.types import Candidate, Measurement, Status


def _study(db: Path, trials: int = 300) -> None:
    """A real store with one study of many trials (several pages of trial rows)."""
    store = StudyStore(db)
    store.open_study(parse_job({"name": "old", "target": "replay", "workload": {}}))
    for i in range(trials):
        t = store.start_trial("old", Candidate(config={"threads": i, "note": "x" * 40}))
        store.finish_trial(t.id, Measurement(status=Status.OK, samples=[1.0 + i, 2.0 + i]))
    store.close()


def _random_bytes(db: Path) -> None:
    db.write_bytes(random.Random(1).randbytes(64 * 1024))


def _torn_page(db: Path) -> None:
    """Overwrite most of the trials table's root page, as a write cut short by a power loss would."""
    _study(db)
    con = sqlite3.connect(db)
    page = con.execute("PRAGMA page_size").fetchone()[0]
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name='trials'").fetchone()[0]
    con.close()
    data = bytearray(db.read_bytes())
    start = (root - 1) * page
    data[start:start + page] = random.Random(2).randbytes(page)
    db.write_bytes(bytes(data))


def _foreign(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE studies (id INTEGER PRIMARY KEY, title TEXT)")
    con.execute("INSERT INTO studies (title) VALUES ('not ours')")
    con.commit()
    con.close()


def _empty(db: Path) -> None:
    db.write_bytes(b"")


DAMAGE = {"random-bytes": _random_bytes, "torn-page": _torn_page, "foreign-schema": _foreign, "empty-file": _empty}


def _one_line_exit_4(result) -> None:  # noqa: ANN001
    assert result.returncode == 4, (result.returncode, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "fix:" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_read_commands_give_one_line_and_never_write(tmp_path: Path, damage: str) -> None:
    db = tmp_path / ".tunesmith" / "tunesmith.db"
    db.parent.mkdir()
    DAMAGE[damage](db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    commands = [("status", "old"), ("report", "old")]
    if damage != "torn-page":  # listing reads only the studies table and counts, which a torn trials page spares
        commands.append(("list",))
    for args in commands:
        _one_line_exit_4(tune(*args, cwd=tmp_path))
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # nothing was written, no schema added
    assert not (tmp_path / ".tunesmith" / "crash.log").exists()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_run_on_a_damaged_store_is_exit_4(tmp_path: Path, damage: str) -> None:
    job = make_job(tmp_path, trials=2)
    db = tmp_path / ".tunesmith" / "tunesmith.db"
    db.parent.mkdir()
    DAMAGE[damage](db)
    if damage == "empty-file":  # an empty file is a new store to a writer: the study runs
        assert tune("run", str(job), "--llm", "off", cwd=tmp_path).returncode == 0
        return
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    _one_line_exit_4(tune("run", str(job), "--llm", "off", cwd=tmp_path))
    if damage != "torn-page":  # the torn file is opened for writing before the damage shows; its bytes may settle
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_read_commands_leave_a_healthy_store_unchanged(tmp_path: Path) -> None:
    db = tmp_path / ".tunesmith" / "tunesmith.db"
    _study(db, trials=3)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (("list",), ("status",), ("status", "old"), ("report", "old")):
        result = tune(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
