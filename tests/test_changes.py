"""The change ledger: written before acting, undone in reverse order, restored after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tunesmith.runners.changes import UNDO_HANDLERS, ChangeLedger, LedgerEntry, snapshot_file
from tunesmith.runners.errors import JobError


@pytest.fixture
def ledger(tmp_path: Path) -> ChangeLedger:
    return ChangeLedger(tmp_path / "state" / "changes.jsonl")


def test_record_is_on_disk_before_the_caller_acts(ledger: ChangeLedger, tmp_path: Path) -> None:
    target = tmp_path / "knob"
    entry_id = ledger.record("file", str(target), snapshot_file(target))
    # a second ledger object (as a new process would open it) already sees the pending entry
    pending = ChangeLedger(ledger.path).pending()
    assert [(e.id, e.kind, e.target) for e in pending] == [(entry_id, "file", str(target.absolute()))]
    assert pending[0].undo == {"path": str(target.absolute()), "absent": True}
    assert pending[0].pid == os.getpid()
    ledger.done(entry_id)
    assert ledger.pending() == []


def test_file_change_restores_content_and_mode(ledger: ChangeLedger, tmp_path: Path) -> None:
    f = tmp_path / "config.ini"
    f.write_bytes(b"stripe_count=1\n\x00\xff")
    f.chmod(0o640)
    with ledger.file_change(f) as entry_id:
        assert ledger.pending()[0].id == entry_id
        f.write_text("stripe_count=8\n")
        f.chmod(0o600)
    assert f.read_bytes() == b"stripe_count=1\n\x00\xff"
    assert f.stat().st_mode & 0o777 == 0o640
    assert ledger.pending() == []


def test_file_change_removes_a_created_file_even_on_error(ledger: ChangeLedger, tmp_path: Path) -> None:
    f = tmp_path / "created.conf"
    with pytest.raises(RuntimeError, match="candidate failed"):
        with ledger.file_change(f):
            f.write_text("new")
            raise RuntimeError("candidate failed")
    assert not f.exists()
    assert ledger.pending() == []


def test_env_change_restores_or_unsets(ledger: ChangeLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TS_LEDGER_SET", "old")
    monkeypatch.delenv("TS_LEDGER_UNSET", raising=False)
    with ledger.env_change("TS_LEDGER_SET"), ledger.env_change("TS_LEDGER_UNSET"):
        os.environ["TS_LEDGER_SET"] = "new"
        os.environ["TS_LEDGER_UNSET"] = "new"
    assert os.environ["TS_LEDGER_SET"] == "old"
    assert "TS_LEDGER_UNSET" not in os.environ


def test_restore_all_goes_newest_first(ledger: ChangeLedger, tmp_path: Path) -> None:
    f = tmp_path / "value"
    f.write_text("v0")
    first = ledger.record("file", str(f), snapshot_file(f))
    f.write_text("v1")
    second = ledger.record("file", str(f), snapshot_file(f))
    f.write_text("v2")
    outcomes = ledger.restore_all()
    assert f.read_text() == "v0"  # oldest-first would leave "v1"
    assert outcomes[0].startswith(f"#{second} file") and outcomes[1].startswith(f"#{first} file")
    assert all("\n" not in line for line in outcomes)
    assert ledger.pending() == [] and ledger.restore_all() == []


def test_command_undo_runs_and_a_failure_stays_pending(ledger: ChangeLedger, tmp_path: Path) -> None:
    marker = tmp_path / "undone"
    ok = ledger.record("command", "touch", {"argv": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]})
    bad = ledger.record("command", "broken", {"argv": [sys.executable, "-c", "raise SystemExit('nope')"]})
    outcomes = ledger.restore_all()
    assert marker.exists()
    assert "NOT restored" in outcomes[0] and "nope" in outcomes[0]
    assert outcomes[1].startswith(f"#{ok} command touch: ran ")
    assert [e.id for e in ledger.pending()] == [bad]


def test_command_undo_timeout_and_missing_program(ledger: ChangeLedger) -> None:
    slow = {"argv": [sys.executable, "-c", "import time; time.sleep(10)"], "timeout_s": 0.5}
    ledger.record("command", "slow", slow)
    ledger.record("command", "missing", {"argv": ["/nonexistent/undo-tool"]})
    outcomes = ledger.restore_all()
    assert "cannot run" in outcomes[0] and "timed out after 0.5 s" in outcomes[1]
    assert len(ledger.pending()) == 2


def test_unknown_kind_is_refused_before_anything_changes(ledger: ChangeLedger) -> None:
    with pytest.raises(JobError, match="unknown undo kind 'sysctl'"):
        ledger.record("sysctl", "vm.swappiness", {"value": "60"})
    with pytest.raises(TypeError):
        ledger.record("env", "X", {"name": "X", "value": object()})
    assert ledger.pending() == []


def test_a_torn_last_line_is_skipped(ledger: ChangeLedger, tmp_path: Path) -> None:
    f = tmp_path / "x"
    first = ledger.record("file", str(f), snapshot_file(f))
    with ledger.path.open("a") as fh:
        fh.write('{"op": "record", "entry": {"id": 9')  # killed mid-write
    second = ledger.record("file", str(f), snapshot_file(f))
    assert [e.id for e in ledger.pending()] == [first, second]
    assert second == first + 1


def test_registered_handler_is_used(ledger: ChangeLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[LedgerEntry] = []
    monkeypatch.setitem(UNDO_HANDLERS._entries, "probe", lambda e: seen.append(e) or "probed")
    entry_id = ledger.record("probe", "thing", {"k": 1})
    assert ledger.restore_all() == [f"#{entry_id} probe thing: probed"]
    assert seen[0].undo == {"k": 1}


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from tunesmith.runners.changes import ChangeLedger
    ledger = ChangeLedger(sys.argv[1])
    edited, created = sys.argv[2], sys.argv[3]
    with ledger.file_change(edited), ledger.file_change(created), ledger.env_change("TS_CHILD_VAR"):
        with open(edited, "w") as fh:
            fh.write("changed by the tuner")
        with open(created, "w") as fh:
            fh.write("scratch")
        os.environ["TS_CHILD_VAR"] = "1"
        print("changed", flush=True)
        time.sleep(60)
    """
)


def test_sigkilled_process_is_restored_by_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    edited, created = tmp_path / "edited.cfg", tmp_path / "created.cfg"
    edited.write_text("original")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(edited), str(created)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "changed"
        # while the child runs, its changes are its own: another process leaves them pending
        live = ChangeLedger(path).restore_all()
        assert len(live) == 3 and all("still running" in line for line in live)
        assert edited.read_text() == "changed by the tuner"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    assert child.returncode == -signal.SIGKILL
    ledger = ChangeLedger(path)
    assert [e.kind for e in ledger.pending()] == ["file", "file", "env"]
    outcomes = ledger.restore_all()
    assert edited.read_text() == "original"
    assert not created.exists()
    assert "not this one" in outcomes[0] and "removed" in outcomes[1] and "restored" in outcomes[2]
    assert ledger.pending() == []
    ops = [json.loads(line)["op"] for line in path.read_text().splitlines()]
    assert ops == ["record"] * 3 + ["done"] * 3
