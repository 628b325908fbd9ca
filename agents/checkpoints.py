"""The agent graph's checkpoints: a SQLite file in WAL mode, pruned to the latest few per study.

LangGraph saves a checkpoint after every graph step (one per round: ``nodes/evaluate.py``). Only the newest one is needed to
resume after a kill, so older ones are deleted every ``PRUNE_EVERY`` graph steps, keeping ``KEEP``: the
file stays small however long the study runs. ``synchronous=NORMAL`` in WAL mode does not sync the disk
on every commit; a killed process loses nothing (the operating system still holds what was written),
only a power cut can lose the last commits, after which the study resumes from an earlier checkpoint
(the study store, the source of truth, makes that safe: finished trials are never run again).

A step's pending writes (``put_writes``) are committed together with the checkpoint that follows them
(``put``), in one transaction instead of two: between the two nothing happens that a resume would need
(the graph's next checkpoint is written right after; a kill in between resumes from the previous one and
runs the step again, which the nodes are written to allow).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

KEEP = 8  # newest checkpoints kept per thread (resume needs one; a few more help when debugging)
PRUNE_EVERY = 50  # graph steps between two prunes (about fifty rounds)


class BatchedSaver(SqliteSaver):
    """LangGraph's ``SqliteSaver`` whose ``put_writes`` is committed with the next ``put`` (one commit per step).

    LangGraph calls ``put_writes`` from the thread that ran the task and ``put`` from the loop's thread, and
    the two can overlap: whether to defer the commit is therefore decided per thread. A flag shared between
    threads let a ``put`` that ran while another thread was inside ``put_writes`` skip its commit, so a kill
    lost the newest checkpoint (the resumed study then re-planned from an older round).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def put_writes(self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        self._local.defer = True
        try:
            super().put_writes(config, writes, task_id, task_path)
        finally:
            self._local.defer = False

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """The saver's cursor; inside this thread's ``put_writes`` it leaves the transaction open for the next commit."""
        with super().cursor(transaction=transaction and not getattr(self._local, "defer", False)) as cur:
            yield cur


@contextmanager
def open_checkpointer(path: Path) -> Iterator[SqliteSaver]:
    """A ``BatchedSaver`` on ``path`` in WAL mode with ``synchronous=NORMAL``; closed on exit."""
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        yield BatchedSaver(conn)
    finally:
        conn.close()


def prune(saver: SqliteSaver, thread_id: str, keep: int = KEEP) -> int:
    """Delete the thread's checkpoints (and their pending writes) older than its ``keep`` newest ones.

    Checkpoint ids sort by time (LangGraph's own "latest" is the greatest id). Returns how many
    checkpoints were deleted.
    """
    with saver.cursor() as cur:
        row = cur.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id=? AND checkpoint_ns=''"
            " ORDER BY checkpoint_id DESC LIMIT 1 OFFSET ?", (thread_id, max(keep, 1) - 1),
        ).fetchone()
        if row is None:
            return 0
        cutoff = row[0]
        deleted = cur.execute("DELETE FROM checkpoints WHERE thread_id=? AND checkpoint_id<?",
                              (thread_id, cutoff)).rowcount
        cur.execute("DELETE FROM writes WHERE thread_id=? AND checkpoint_id<?", (thread_id, cutoff))
    return deleted
