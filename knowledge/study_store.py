"""The study store: every study, trial, event, reflection and LLM usage in one SQLite file.

Write before you act: a trial is stored as ``running`` before its candidate starts. One process writes a
study at a time (an exclusive lock file per study); a trial left ``running`` by a killed process is
marked failed and interrupted on the next open, and its candidate is retried.

Events (the reasoning trail) are written with the next write of a trial, study or reflection, in the
same transaction, not one commit each: a study of thousands of short trials would otherwise spend
most of its store time committing them. Reading the events, closing the store and ``flush_events``
write them at once; a ``kill -9`` can lose only the events emitted since the last trial write (the
trials themselves, the source of truth, are written at once as before).

``StudyStore(path, read_only=True)`` opens the file read-only (``tune list/status/report`` never write);
a damaged file or a foreign schema is refused with one line (``InfrastructureError``, exit code 4).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tunesmith.knowledge.storage import StudyInfo, StudyStorage, check_study_name
from tunesmith.runners.errors import InfrastructureError, StudyConflictError
from tunesmith.runners.job import Job
from tunesmith.runners.secrets import redact, redact_obj
from tunesmith.runners.types import (
    REDACTED,
    Candidate,
    Measurement,
    Reflection,
    Status,
    Trial,
    TrialState,
    Verdict,
    utcnow,
)

MAX_PENDING_EVENTS = 64  # events held before they are written anyway

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


__all__ = ["SCHEMA", "StudyInfo", "StudyStore"]


class StudyStore(StudyStorage):
    """SQLite-backed record of studies; safe to reopen after a crash (the ``StudyStorage`` interface)."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._locks: dict[str, int] = {}
        self._tx_lock = threading.RLock()
        self._pending: list[tuple[str, str, str, str, str]] = []  # events not yet written (see the module doc)
        if read_only and not self.path.is_file():
            raise InfrastructureError(f"no study store at {self.path}", "run `tune run JOB` first or pass --state-dir")
        try:
            if read_only:  # a URI with mode=ro: SQLite itself refuses to write the file
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                                       isolation_level=None, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # shared by the device executor's worker threads; _tx serialises their transactions
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db = _Guarded(conn, self.path, self._tx_lock)
            fresh = _check_schema(self.db, self.path, read_only)
            if not read_only:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                if fresh:
                    self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None
        conn.row_factory = sqlite3.Row

    def close(self) -> None:
        if not self.read_only:
            with self._tx_lock, suppress(InfrastructureError, sqlite3.Error):
                self.flush_events()
        for fd in self._locks.values():
            os.close(fd)
        self._locks.clear()
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[_Guarded]:
        with self._tx_lock:  # one transaction at a time on the shared connection (trials may run in threads)
            self.db.execute("BEGIN IMMEDIATE")
            events, self._pending = self._pending, []
            try:
                if events:
                    self.db.executemany("INSERT INTO events (study, ts, node, message, data) VALUES (?,?,?,?,?)", events)
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                self._pending[:0] = events  # written with the next transaction instead
                raise
            self.db.execute("COMMIT")

    def _write(self, sql: str, args: Any) -> _Result:
        """One write statement: alone (autocommit) when no event is pending, else with them in one transaction."""
        with self._tx_lock:
            if not self._pending:
                return self.db.execute(sql, args)
            with self._tx() as db:
                return db.execute(sql, args)

    def flush_events(self) -> None:
        """Write the pending events now (one transaction)."""
        with self._tx_lock:
            if self._pending:
                with self._tx():
                    pass

    # -- studies -------------------------------------------------------------------------------------
    def lock(self, study: str) -> None:
        """Take the study's writer lock or fail with one line naming the holder."""
        check_study_name(study)
        if self.read_only:
            raise InfrastructureError(f"study store {self.path} is open read-only", "open it for writing to run a study")
        if study in self._locks:
            return
        fd = os.open(self._lock_path(study), os.O_RDWR | os.O_CREAT, 0o644)
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

    def lock_holder(self, study: str) -> int | None:
        """The pid holding the study's writer lock, or None (a read: creates nothing)."""
        if study in self._locks:
            return os.getpid()
        try:
            fd = os.open(self._lock_path(study), os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def _lock_path(self, study: str) -> Path:
        return self.path.parent / f"{study}.lock"

    def open_study(self, job: Job, *, job_path: str = "") -> tuple[StudyInfo, bool]:
        """Create the study or resume it; returns (info, resumed). Refuses a changed job definition."""
        row = self.db.execute("SELECT * FROM studies WHERE name=?", (job.name,)).fetchone()
        now = utcnow()
        if row is None:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO studies (name, target, definition_hash, job, status, created_at, updated_at, job_path)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (job.name, job.target, job.definition_hash(), redact(json.dumps(job.definition(), default=str)),
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
                db.execute("UPDATE studies SET llm_mode=? WHERE name=?", (redact(llm_mode), name))

    def save_usage(self, name: str, usage: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("UPDATE studies SET usage=? WHERE name=?", (json.dumps(redact_obj(usage)), name))

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
        # One statement, so one transaction of its own: the number is the newest entry of the (study, number)
        # index plus one (no scan), and the stored row comes back with RETURNING (no second read).
        row = self._write(
            "INSERT INTO trials (study, number, key, candidate, state, pid, started_at) VALUES (?, COALESCE("
            "(SELECT number FROM trials WHERE study=? ORDER BY number DESC LIMIT 1), 0) + 1, ?,?,?,?,?) RETURNING *",
            (study, study, candidate.key, redact(candidate.model_dump_json()), "running", os.getpid(), utcnow()),
        ).fetchone()
        return _trial_from_row(row)

    def finish_trial(self, trial_id: int, measurement: Measurement) -> Trial:
        state = "done" if measurement.status == Status.OK else "failed"
        row = self._write(  # one statement (with any pending events): the updated row comes back
            "UPDATE trials SET state=?, measurement=?, finished_at=? WHERE id=? RETURNING *",
            (state, redact(measurement.model_dump_json()), utcnow(), trial_id),
        ).fetchone()
        return _trial_from_row(row)

    def set_verdict(self, trial_id: int, verdict: Verdict, explanation: str) -> None:
        self._write("UPDATE trials SET verdict=?, explanation=? WHERE id=?", (verdict.value, redact(explanation), trial_id))

    def trial(self, trial_id: int) -> Trial:
        row = self.db.execute("SELECT * FROM trials WHERE id=?", (trial_id,)).fetchone()
        return _trial_from_row(row)

    def trials(self, study: str, *, include_interrupted: bool = True) -> list[Trial]:
        sql = "SELECT * FROM trials WHERE study=?" + ("" if include_interrupted else " AND interrupted=0")
        return [_trial_from_row(r) for r in self.db.execute(sql + " ORDER BY number", (study,))]

    def trial_by_number(self, study: str, number: int) -> Trial | None:
        row = self.db.execute("SELECT * FROM trials WHERE study=? AND number=?", (study, number)).fetchone()
        return _trial_from_row(row) if row else None

    def trials_since(self, study: str, after_id: int, *, include_interrupted: bool = True,
                     limit: int | None = None) -> list[Trial]:
        """Trials with an id above ``after_id``, in id order: what changed since a reader last looked.

        ``+study`` keeps SQLite from scanning the study's index: the rows after ``after_id`` are found by id.
        """
        sql = "SELECT * FROM trials WHERE +study=? AND id>?" + ("" if include_interrupted else " AND interrupted=0")
        sql += " ORDER BY id" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return [_trial_from_row(r) for r in self.db.execute(sql, (study, after_id))]

    def count_trials(self, study: str) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM trials WHERE study=?", (study,)).fetchone()[0])

    def finished(self, study: str, key: str) -> Trial | None:
        """The first finished (not interrupted) trial of this candidate key, if any."""
        row = self.db.execute(
            "SELECT * FROM trials WHERE study=? AND key=? AND state IN ('done','failed') AND interrupted=0"
            " ORDER BY +number LIMIT 1",  # +: look the key up in its index, then sort its few rows
            (study, key),
        ).fetchone()
        return _trial_from_row(row) if row else None

    # -- events and reflections ---------------------------------------------------------------------
    def add_event(self, study: str, node: str, message: str, data: dict[str, Any] | None = None) -> None:
        row = (study, utcnow(), node, redact(message), redact(json.dumps(data or {}, default=str)))
        with self._tx_lock:
            self._pending.append(row)  # written with the next write (see the module doc)
            if len(self._pending) >= MAX_PENDING_EVENTS:
                self.flush_events()

    def events(self, study: str) -> list[dict[str, Any]]:
        if self._pending:
            self.flush_events()
        rows = self.db.execute("SELECT ts, node, message, data FROM events WHERE study=? ORDER BY id", (study,))
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def add_reflection(self, reflection: Reflection) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO reflections (study, workload, hardware, body, created_at) VALUES (?,?,?,?,?)",
                (reflection.study, reflection.workload, reflection.hardware, redact(reflection.model_dump_json()),
                 reflection.created_at),
            )

    def reflections(self, *, study: str | None = None, workload_prefix: str | None = None,
                    limit: int | None = None) -> list[Reflection]:
        sql, args = "SELECT body FROM reflections WHERE 1=1", []
        if study:
            sql, args = sql + " AND study=?", [*args, study]
        if workload_prefix:
            sql, args = sql + " AND workload LIKE ?", [*args, workload_prefix + "%"]
        sql += " ORDER BY id" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return [Reflection.model_validate_json(r["body"]) for r in self.db.execute(sql, args)]


_STORED = {REDACTED: True}


def _trial_from_row(row: sqlite3.Row) -> Trial:
    return Trial(
        id=row["id"],
        study=row["study"],
        number=row["number"],
        candidate=Candidate.model_validate_json(row["candidate"], context=_STORED),  # redacted on write
        state=TrialState(row["state"]),
        measurement=Measurement.model_validate_json(row["measurement"]) if row["measurement"] else None,
        verdict=Verdict(row["verdict"]) if row["verdict"] else None,
        explanation=row["explanation"] or "",
        interrupted=bool(row["interrupted"]),
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


class _Result:
    """Every row of a query, fetched at once so a damaged page fails inside the guard."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.rows = cursor.fetchall()
        self.lastrowid = cursor.lastrowid

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


class _Guarded:
    """The connection, with driver errors of a damaged or foreign file turned into one-line errors.

    Every statement holds ``mutex`` (the store's transaction lock), so threads share the store safely.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, mutex: threading.RLock) -> None:
        self.conn, self.path, self.mutex = conn, path, mutex

    def execute(self, sql: str, args: Any = ()) -> _Result:
        try:
            with self.mutex:
                return _Result(self.conn.execute(sql, args))
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # a bug in tunesmith, not a damaged file
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None

    def executemany(self, sql: str, rows: Any) -> None:
        try:
            with self.mutex:
                self.conn.executemany(sql, rows)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None

    def executescript(self, sql: str) -> None:
        try:
            self.conn.executescript(sql)
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None

    def close(self) -> None:
        self.conn.close()


def _damaged(path: Path, exc: BaseException) -> InfrastructureError:
    return InfrastructureError(
        f"study store {path} cannot be used ({exc})",
        f"move the damaged file aside (mv {path} {path}.damaged) to start afresh, or pass another --state-dir",
    )


def _expected_columns() -> dict[str, set[str]]:
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(SCHEMA)
        return _columns(mem)
    finally:
        mem.close()


def _columns(conn: Any) -> dict[str, set[str]]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return {t: {r[1] for r in conn.execute(f"PRAGMA table_info('{t}')")} for t in tables if not t.startswith("sqlite_")}


def _check_schema(db: _Guarded, path: Path, read_only: bool) -> bool:
    """Whether the file is new (no tables yet); refuses a file with some other program's tables."""
    found = _columns(db)
    if not found:
        if read_only:
            raise InfrastructureError(f"study store {path} is empty (no tables)",
                                      "run `tune run JOB` to create studies, or pass the right --state-dir")
        return True
    for table, columns in _expected_columns().items():
        missing = sorted(columns - found.get(table, set()))
        if missing:
            what = f"has no table {table!r}" if table not in found else f"table {table!r} lacks {', '.join(missing)}"
            raise InfrastructureError(f"{path} is not a tunesmith study store ({what})",
                                      "pass the --state-dir of your studies; the file was left untouched")
    return False
