"""`tune io analyze` and `tune io trace` through the real console script, by pipe and in a pseudo-terminal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tunesmith.runners.iotrace.capture import strace_works
from tunesmith.runners.iotrace.darshan_log import example_logs

TUNE = str(Path(sys.executable).parent / "tune")
LOG = example_logs()["ior_hdf5_example.darshan"]


def tune(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([TUNE, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_analyze_prints_tables_and_ranked_suggestions() -> None:
    res = tune("io", "analyze", LOG)
    assert res.returncode == 0, res.stderr
    assert "source: darshan" in res.stdout and "suggestions, most promising first" in res.stdout
    assert "collective_buffering" in res.stdout and "Lustre stripes" in res.stdout


def test_analyze_json_is_the_characterisation() -> None:
    res = tune("io", "analyze", LOG, "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["source"] == "darshan" and data["nprocs"] == 4 and data["suggestions"][0]["rank"] == 1


def test_bad_or_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("not a trace\n")
    for path in (bad, tmp_path / "missing"):
        res = tune("io", "analyze", str(path))
        assert res.returncode == 2
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "fix:" in lines[0]
        assert "Traceback" not in res.stderr


@pytest.mark.skipif(bool(strace_works()), reason="strace cannot trace here")
def test_trace_runs_a_command_under_strace(tmp_path: Path) -> None:
    script = tmp_path / "w.py"
    script.write_text("import os\nfd = os.open('f.bin', os.O_CREAT | os.O_WRONLY)\n"
                      "for _ in range(40):\n    os.write(fd, b'x' * 200)\n    os.fsync(fd)\nos.close(fd)\n")
    res = tune("io", "trace", "--out", str(tmp_path / "tr"), "--json", "--", sys.executable, str(script), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["source"] == "strace" and data["metadata"]["fsyncs"] == 40
    assert data["suggestions"][0]["category"] == "fsync_policy"
    assert "trace kept in" in res.stderr
    res = tune("io", "trace", "--", "no-such-program-xyz")
    assert res.returncode == 2 and res.stderr.count("\n") == 1


@pytest.mark.skipif(shutil.which("script") is None and os.name != "posix", reason="no pty")
def test_analyze_in_a_pseudo_terminal() -> None:
    child = pexpect.spawn(TUNE, ["io", "analyze", LOG], timeout=120, dimensions=(50, 160), encoding="utf-8")
    child.expect("suggestions, most promising first")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    bad = pexpect.spawn(TUNE, ["io", "analyze", "/nonexistent.darshan"], timeout=60, encoding="utf-8")
    bad.expect("error: .*no such file")
    bad.expect(pexpect.EOF)
    bad.close()
    assert bad.exitstatus == 2
