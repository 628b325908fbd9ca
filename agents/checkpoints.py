"""The agent graph's checkpoints: a SQLite file in WAL mode, pruned to the latest few per study.

LangGraph saves a checkpoint after every node (about five per trial). Only the newest one is needed to
resume after a kill, so older ones are deleted every ``PRUNE_EVERY`` graph steps, keeping ``KEEP``: the
file stays small however long the study runs. ``synchronous=NORMAL`` in WAL mode does not sync the disk
on every commit; a killed process loses nothing (the operating system still holds what was written),
only a power cut can lose the last commits, after which the study resumes from an earlier checkpoint
(the study store, the source of truth, makes that safe: finished trials are never run again).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

KEEP = 8  # newest checkpoints kept per thread (resume needs one; a few more help when debugging)
PRUNE_EVERY = 50  # graph steps between two prunes (about ten trials)


@contextmanager
def open_checkpointer(path: Path) -> Iterator[SqliteSaver]:
    """A ``SqliteSaver`` on ``path`` in WAL mode with ``synchronous=NORMAL``; closed on exit."""
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        yield SqliteSaver(conn)
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
