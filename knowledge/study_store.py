"""The study store: every study, trial, event, reflection and LLM usage in one SQLite file.

Write before you act: a trial is stored as ``running`` before its candidate starts. One process writes a
study at a time (an exclusive lock file per study); a trial left ``running`` by a killed process is
marked failed and interrupted on the next open, and its candidate is retried.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tunesmith.runners.errors import InfrastructureError, StudyConflictError
from tunesmith.runners.job import Job
from tunesmith.runners.types import (
    Candidate,
    Measurement,
    Reflection,
    Status,
    Trial,
    TrialState,
    Verdict,
    utcnow,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
  name TEXT PRIMARY KEY, target TEXT NOT NULL, definition_hash TEXT NOT NULL, job TEXT NOT NULL,
  status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  llm_mode TEXT DEFAULT '', usage TEXT DEFAULT '{}', job_path TEXT DEFAULT ''
);
CREATE TABLE IF NOT EXISTS trials (
  id INTEGER PRIMARY KEY AUTOINCREMENT, study TEXT NOT NULL, number INTEGER NOT NULL, key TEXT NOT NULL,
  candidate TEXT NOT NULL, state TEXT NOT NULL, measurement TEXT, verdict TEXT, explanation TEXT DEFAULT '',
  interrupted INTEGER DEFAULT 0, pid INTEGER, started_at TEXT, finished_at TEXT,
  UNIQUE (study, number)
);
CREATE INDEX IF NOT EXISTS trials_key ON trials (study, key);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, study TEXT NOT NULL, ts TEXT NOT NULL, node TEXT NOT NULL,
  message TEXT NOT NULL, data TEXT DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS reflections (
  id INTEGER PRIMARY KEY AUTOINCREMENT, study TEXT NOT NULL, workload TEXT NOT NULL, hardware TEXT NOT NULL,
  body TEXT NOT NULL, created_at TEXT NOT NULL
);
"""


class StudyInfo(BaseModel):
    """A row of the studies table."""

    name: str
    target: str
    definition_hash: str
    status: str
    created_at: str
    updated_at: str
    llm_mode: str = ""
    usage: dict[str, Any] = {}
    job_path: str = ""
    job: dict[str, Any] = {}


class StudyStore:
    """SQLite-backed record of studies; safe to reopen after a crash."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InfrastructureError(
                f"study store {self.path} cannot be opened ({exc})",
                "point --state-dir at another folder; the damaged file is left untouched",
            ) from None
        self.db.row_factory = sqlite3.Row
        self._locks: dict[str, int] = {}

    def close(self) -> None:
        for fd in self._locks.values():
            os.close(fd)
        self._locks.clear()
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- studies -------------------------------------------------------------------------------------
    def lock(self, study: str) -> None:
        """Take the study's writer lock or fail with one line naming the holder."""
        lock_path = self.path.parent / f"{study}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise InfrastructureError(
                f"study {study!r} is being run by pid {holder}", "wait for it to finish or stop that process"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._locks[study] = fd

    def open_study(self, job: Job, *, job_path: str = "") -> tuple[StudyInfo, bool]:
        """Create the study or resume it; returns (info, resumed). Refuses a changed job definition."""
        row = self.db.execute("SELECT * FROM studies WHERE name=?", (job.name,)).fetchone()
        now = utcnow()
        if row is None:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO studies (name, target, definition_hash, job, status, created_at, updated_at, job_path)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (job.name, job.target, job.definition_hash(), json.dumps(job.definition(), default=str),
                     "running", now, now, job_path),
                )
            return self.study(job.name), False
        if row["definition_hash"] != job.definition_hash():
            changed = _changed_keys(json.loads(row["job"]), json.loads(json.dumps(job.definition(), default=str)))
            raise StudyConflictError(
                f"study {job.name!r} already exists with a different job definition (changed: {', '.join(changed)})",
                "rename the job (name = ...) or run with --restart to archive the old study and start afresh",
            )
        self.set_status(job.name, "running")
        return self.study(job.name), True

    def archive(self, name: str) -> str:
        """Rename a study (and its rows) to ``name@<timestamp>``, keeping its data; returns the new name."""
        new = f"{name}@{utcnow().replace(':', '').replace('+0000', 'Z')}"
        with self._tx() as db:
            for table in ("trials", "events", "reflections"):
                db.execute(f"UPDATE {table} SET study=? WHERE study=?", (new, name))
            db.execute("UPDATE studies SET name=?, status='archived' WHERE name=?", (new, name))
        return new

    def study(self, name: str) -> StudyInfo:
        row = self.db.execute("SELECT * FROM studies WHERE name=?", (name,)).fetchone()
        if row is None:
            raise StudyConflictError(f"no study named {name!r}", "run `tune list` to see the studies")
        data = dict(row)
        data["usage"] = json.loads(data["usage"] or "{}")
        data["job"] = json.loads(data["job"])
        return StudyInfo.model_validate(data)

    def studies(self) -> list[StudyInfo]:
        names = [r["name"] for r in self.db.execute("SELECT name FROM studies ORDER BY created_at")]
        return [self.study(n) for n in names]

    def set_status(self, name: str, status: str, *, llm_mode: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE studies SET status=?, updated_at=? WHERE name=?", (status, utcnow(), name))
            if llm_mode is not None:
                db.execute("UPDATE studies SET llm_mode=? WHERE name=?", (llm_mode, name))

    def save_usage(self, name: str, usage: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("UPDATE studies SET usage=? WHERE name=?", (json.dumps(usage), name))

    # -- trials --------------------------------------------------------------------------------------
    def recover(self, study: str) -> list[Trial]:
        """Mark trials left running by a dead process as failed+interrupted; return them (to retry)."""
        rows = self.db.execute("SELECT id FROM trials WHERE study=? AND state=?", (study, "running")).fetchall()
        out = []
        for r in rows:
            m = Measurement(status=Status.INFRASTRUCTURE, detail="interrupted: the process running it was killed")
            with self._tx() as db:
                db.execute(
                    "UPDATE trials SET state=?, measurement=?, interrupted=1, finished_at=? WHERE id=?",
                    ("failed", m.model_dump_json(), utcnow(), r["id"]),
                )
            out.append(self.trial(r["id"]))
        return out

    def start_trial(self, study: str, candidate: Candidate) -> Trial:
        """Store the trial as running (before it starts) and return it with its number."""
        with self._tx() as db:
            number = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM trials WHERE study=?", (study,)).fetchone()[0]
            cur = db.execute(
                "INSERT INTO trials (study, number, key, candidate, state, pid, started_at) VALUES (?,?,?,?,?,?,?)",
                (study, number, candidate.key, candidate.model_dump_json(), "running", os.getpid(), utcnow()),
            )
        return self.trial(int(cur.lastrowid))

    def finish_trial(self, trial_id: int, measurement: Measurement) -> Trial:
        state = "done" if measurement.status == Status.OK else "failed"
        with self._tx() as db:
            db.execute(
                "UPDATE trials SET state=?, measurement=?, finished_at=? WHERE id=?",
                (state, measurement.model_dump_json(), utcnow(), trial_id),
            )
        return self.trial(trial_id)

    def set_verdict(self, trial_id: int, verdict: Verdict, explanation: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE trials SET verdict=?, explanation=? WHERE id=?", (verdict.value, explanation, trial_id))

    def trial(self, trial_id: int) -> Trial:
        row = self.db.execute("SELECT * FROM trials WHERE id=?", (trial_id,)).fetchone()
        return _trial_from_row(row)

    def trials(self, study: str, *, include_interrupted: bool = True) -> list[Trial]:
        sql = "SELECT * FROM trials WHERE study=?" + ("" if include_interrupted else " AND interrupted=0")
        return [_trial_from_row(r) for r in self.db.execute(sql + " ORDER BY number", (study,))]

    def finished(self, study: str, key: str) -> Trial | None:
        """The first finished (not interrupted) trial of this candidate key, if any."""
        row = self.db.execute(
            "SELECT * FROM trials WHERE study=? AND key=? AND state IN ('done','failed') AND interrupted=0"
            " ORDER BY number LIMIT 1",
            (study, key),
        ).fetchone()
        return _trial_from_row(row) if row else None

    # -- events and reflections ---------------------------------------------------------------------
    def add_event(self, study: str, node: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (study, ts, node, message, data) VALUES (?,?,?,?,?)",
                (study, utcnow(), node, message, json.dumps(data or {}, default=str)),
            )

    def events(self, study: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT ts, node, message, data FROM events WHERE study=? ORDER BY id", (study,))
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def add_reflection(self, reflection: Reflection) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO reflections (study, workload, hardware, body, created_at) VALUES (?,?,?,?,?)",
                (reflection.study, reflection.workload, reflection.hardware, reflection.model_dump_json(),
                 reflection.created_at),
            )

    def reflections(self, *, study: str | None = None, workload_prefix: str | None = None) -> list[Reflection]:
        sql, args = "SELECT body FROM reflections WHERE 1=1", []
        if study:
            sql, args = sql + " AND study=?", [*args, study]
        if workload_prefix:
            sql, args = sql + " AND workload LIKE ?", [*args, workload_prefix + "%"]
        return [Reflection.model_validate_json(r["body"]) for r in self.db.execute(sql + " ORDER BY id", args)]


def _trial_from_row(row: sqlite3.Row) -> Trial:
    return Trial(
        id=row["id"],
        study=row["study"],
        number=row["number"],
        candidate=Candidate.model_validate_json(row["candidate"]),
        state=TrialState(row["state"]),
        measurement=Measurement.model_validate_json(row["measurement"]) if row["measurement"] else None,
        verdict=Verdict(row["verdict"]) if row["verdict"] else None,
        explanation=row["explanation"] or "",
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _changed_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            keys.append(f"{prefix}{k}")
    return keys or ["?"]
