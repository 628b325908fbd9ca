"""The change ledger: every change tunesmith makes outside its own files, written down before it is made.

A target that changes the outside world (a file, an environment variable, later a Lustre stripe setting
or a sysctl) first calls ``ledger.record(kind, target, undo)``: the entry is appended to a JSON-lines
file and fsync'd, and only then does the caller act. Undoing it marks the entry done. If the process is
killed in between, the entry stays pending and the next ``restore_all()`` on the same file (in any
process) undoes it. Undo handlers are looked up by kind in ``UNDO_HANDLERS``; a kind must be registered
there (a "module:function" line) so that a fresh process can restore it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shlex
import stat
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import psutil
from pydantic import BaseModel, Field

from .registry import Registry
from .types import utcnow

UndoHandler = Callable[["LedgerEntry"], str]

UNDO_HANDLERS: Registry[Any] = Registry(
    "undo kind",
    {
        "file": "tunesmith.runners.changes:undo_file",
        "env": "tunesmith.runners.changes:undo_env",
        "command": "tunesmith.runners.changes:undo_command",
        "gluster_option": "tunesmith.runners.appliers.gluster:undo_option",
        "lustre_param": "tunesmith.runners.appliers.lustre:undo_lctl",
        "lustre_stripe": "tunesmith.runners.appliers.lustre:undo_stripe",
        "block_read_ahead": "tunesmith.runners.appliers.block:undo_read_ahead",
        "block_scheduler": "tunesmith.runners.appliers.block:undo_scheduler",
        "juicefs_options": "tunesmith.runners.filesystems.juicefs:undo_options",
        "juicefs_volume": "tunesmith.runners.filesystems.juicefs:undo_volume",
        "gluster_volume": "tunesmith.runners.filesystems.gluster:undo_volume",
        "gluster_daemon": "tunesmith.runners.filesystems.gluster:undo_daemon",
    },
)


def _process_start(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


class LedgerEntry(BaseModel):
    """One recorded change: what kind, on what, how to undo it, and which process made it."""

    id: int
    kind: str
    target: str
    undo: dict[str, Any]
    pid: int = Field(default_factory=os.getpid)
    pid_start: float = Field(default_factory=lambda: _process_start(os.getpid()))
    at: str = Field(default_factory=utcnow)

    def owner_alive(self) -> bool:
        """Whether the process that made the change is still running (pid reuse is detected)."""
        start = _process_start(self.pid)
        return start != 0.0 and abs(start - self.pid_start) < 0.5


# -- undo handlers ------------------------------------------------------------------------------------
def snapshot_file(path: str | Path) -> dict[str, Any]:
    """The undo record of a file as it is now: its bytes and mode, or ``absent`` if it does not exist."""
    p = Path(path).absolute()
    if not p.exists():
        return {"path": str(p), "absent": True}
    if not p.is_file():
        raise ValueError(f"{p} is not a regular file; only files can be recorded with kind 'file'")
    return {
        "path": str(p),
        "content_b64": base64.b64encode(p.read_bytes()).decode("ascii"),
        "mode": stat.S_IMODE(p.stat().st_mode),
    }


def undo_file(entry: LedgerEntry) -> str:
    """Put a file back: rewrite its old bytes in place (keeps links and special files) and mode, or delete it."""
    p = Path(entry.undo["path"])
    if entry.undo.get("absent"):
        if p.is_symlink() or p.exists():
            p.unlink()
            return f"removed {p}"
        return f"{p} was already absent"
    data = base64.b64decode(entry.undo["content_b64"])
    with p.open("wb") as fh:
        fh.write(data)
    mode = entry.undo.get("mode")
    if mode is not None and stat.S_IMODE(p.stat().st_mode) != mode:
        os.chmod(p, mode)
    return f"restored {p} ({len(data)} bytes)"


def undo_env(entry: LedgerEntry) -> str:
    """Restore an environment variable of this process (old value, or unset if it had none)."""
    name, value = entry.undo["name"], entry.undo.get("value")
    if entry.pid != os.getpid():
        return f"nothing to undo: ${name} was changed in process {entry.pid}'s environment, not this one's"
    if value is None:
        os.environ.pop(name, None)
        return f"unset ${name}"
    os.environ[name] = value
    return f"restored ${name}"


def undo_command(entry: LedgerEntry) -> str:
    """Run the undo command ``argv`` (with ``timeout_s``, default 60, and optional ``cwd``)."""
    argv = [str(a) for a in entry.undo["argv"]]
    timeout = float(entry.undo.get("timeout_s", 60))
    try:
        done = subprocess.run(
            argv,
            cwd=entry.undo.get("cwd"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{shlex.join(argv)} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise RuntimeError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        raise RuntimeError(f"{shlex.join(argv)} exited {done.returncode}: {last}")
    return f"ran {shlex.join(argv)}"


# -- the ledger -----------------------------------------------------------------------------------------
class ChangeLedger:
    """An append-only, fsync'd JSON-lines record of outside changes, with their undo, shared by processes.

    ``record`` before acting, ``restore``/``done`` after undoing, ``restore_all`` to undo everything still
    pending (in reverse order). Entries of another process that is still running are left to it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _locked(self) -> Iterator[IO[bytes]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        with self.path.open("a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            if created:  # make the new file's name durable too
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            yield fh

    @staticmethod
    def _read(fh: IO[bytes]) -> tuple[dict[int, LedgerEntry], set[int]]:
        fh.seek(0)
        entries: dict[int, LedgerEntry] = {}
        done: set[int] = set()
        for raw in fh.read().splitlines():
            try:
                item = json.loads(raw)
                if item.get("op") == "done":
                    done.add(int(item["id"]))
                elif item.get("op") == "record":
                    entry = LedgerEntry.model_validate(item["entry"])
                    entries[entry.id] = entry
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line torn by a kill mid-write: its change never started
        return entries, done

    @staticmethod
    def _write(fh: IO[bytes], item: dict[str, Any]) -> None:
        fh.seek(0, os.SEEK_END)
        prefix = b""
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                prefix = b"\n"  # never append to a torn line
        fh.write(prefix + json.dumps(item, sort_keys=True).encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())

    def record(self, kind: str, target: str, undo: dict[str, Any]) -> int:
        """Write the change down (durably) before the caller makes it; returns the entry id."""
        UNDO_HANDLERS.get(kind)  # an unknown kind is refused before anything is changed
        json.dumps(undo)  # the undo record must survive the round trip through the file
        with self._locked() as fh:
            entries, _ = self._read(fh)
            entry = LedgerEntry(id=max(entries, default=0) + 1, kind=kind, target=target, undo=undo)
            self._write(fh, {"op": "record", "entry": entry.model_dump()})
        return entry.id

    def done(self, entry_id: int) -> None:
        """Mark an entry as restored (or otherwise settled)."""
        with self._locked() as fh:
            self._write(fh, {"op": "done", "id": entry_id})

    def pending(self) -> list[LedgerEntry]:
        """Entries recorded and not yet restored, oldest first."""
        if not self.path.exists():
            return []
        with self._locked() as fh:
            entries, done = self._read(fh)
        return [entries[i] for i in sorted(entries) if i not in done]

    @staticmethod
    def _undo(entry: LedgerEntry) -> str:
        handler = UNDO_HANDLERS.get(entry.kind)
        return handler(entry)

    def restore(self, entry_id: int) -> str:
        """Undo one pending entry now and mark it done; raises if the undo fails (it stays pending)."""
        with self._locked() as fh:
            entries, done = self._read(fh)
            if entry_id in done or entry_id not in entries:
                return f"#{entry_id}: nothing pending"
            outcome = self._undo(entries[entry_id])
            self._write(fh, {"op": "done", "id": entry_id})
        return outcome

    def restore_all(self) -> list[str]:
        """Undo every pending entry, newest first; one line per entry saying what happened."""
        if not self.path.exists():
            return []
        outcomes: list[str] = []
        with self._locked() as fh:
            entries, done = self._read(fh)
            for entry_id in sorted(set(entries) - done, reverse=True):
                entry = entries[entry_id]
                head = f"#{entry.id} {entry.kind} {entry.target}"
                if entry.pid != os.getpid() and entry.owner_alive():
                    outcomes.append(
                        f"{head}: left pending, process {entry.pid} that made it is still running"
                    )
                    continue
                try:
                    what = self._undo(entry)
                except Exception as exc:  # noqa: BLE001 - reported as one line, the entry stays pending
                    outcomes.append(f"{head}: NOT restored ({type(exc).__name__}: {exc}); still pending")
                    continue
                self._write(fh, {"op": "done", "id": entry.id})
                outcomes.append(f"{head}: {what}")
        return outcomes

    # -- conveniences -------------------------------------------------------------------------------------
    @contextmanager
    def file_change(self, path: str | Path) -> Iterator[int]:
        """Record a file's current state, let the caller change it, and put it back on exit."""
        undo = snapshot_file(path)
        entry_id = self.record("file", undo["path"], undo)
        try:
            yield entry_id
        finally:
            self.restore(entry_id)

    @contextmanager
    def env_change(self, name: str) -> Iterator[int]:
        """Record an environment variable of this process, let the caller change it, restore it on exit."""
        entry_id = self.record("env", name, {"name": name, "value": os.environ.get(name)})
        try:
            yield entry_id
        finally:
            self.restore(entry_id)
