"""Usage mistakes on the command line are one line with the fix and exit 2, through the real console entry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CASES = {
    "bad-int": (["run", "job.toml", "--trials", "abc"], "Invalid value for '--trials'", "tune run --help"),
    "no-command": (["bogus"], "No such command 'bogus'", "tune --help"),
    "no-option": (["run", "job.toml", "--bogus"], "No such option: --bogus", "tune run --help"),
    "missing-arg": (["run"], "Missing argument", "tune run --help"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_usage_mistake_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    args, problem, fix = CASES[case]
    res = subprocess.run([sys.executable, "-m", "tunesmith.agents.frontends.cli", *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and problem in lines[0], res.stderr
    assert f"fix: see `{fix}`" in lines[0]
    assert "Traceback" not in res.stderr + res.stdout and not (tmp_path / ".tunesmith").exists()


def test_help_still_works(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "tunesmith.agents.frontends.cli", "run", "--help"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "JOB_FILE" in res.stdout
