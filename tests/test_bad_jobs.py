"""`tune run` on job files that used to run silently wrong: each is one error line, exit 2, nothing stored."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

HEAD = """
name = "bad"
target = "command"
[workload]
command = ["{python}", "bench.py", "--threads", "{threads}"]
"""
THREADS = '[workload.params.threads]\nkind = "pow2"\nlow = 1\nhigh = 8\ndefault = 1\n'
DIRECT = '[workload.params.direct]\nkind = "bool"\ndefault = false\napply = "env"\n'

CASES = {
    "constraint-unknown-name": (
        HEAD + 'constraints = ["thread <= 4"]\n' + THREADS,
        "error: workload.constraints[1]: unknown parameter 'thread' in 'thread <= 4'; fix: use one of threads",
    ),
    "constraint-syntax": (HEAD + 'constraints = ["threads <="]\n' + THREADS, "does not parse"),
    "constraint-baseline": (
        HEAD + 'constraints = ["threads >= 2"]\n' + THREADS,
        "error: baseline: the default configuration breaks the constraint 'threads >= 2'",
    ),
    "apply-setting": (
        HEAD + THREADS + DIRECT.replace('"env"', '"setting"'),
        "error: workload.params.direct.setting: missing or empty; fix: name it as FAMILY:KEY",
    ),
    "space-values-type": (
        HEAD + THREADS + '[space.threads]\nvalues = ["1", "2"]\n',
        "error: space.threads.values: '1' is not a number",
    ),
    "space-values-bool": (
        HEAD + THREADS + DIRECT + "[space.direct]\nvalues = [true]\n",
        "error: space.direct.values: a bool parameter has no values list",
    ),
    "space-unknown-field": (
        HEAD + THREADS + "[space.threads]\nvlaues = [1, 2]\n", "error: space.threads.vlaues: unknown field"
    ),
    "nan-limit": (HEAD + THREADS + "[runner]\ntimeout_s = nan\n", "runner.timeout_s: Input should be a finite number"),
    "low-above-high": (
        HEAD + THREADS.replace("low = 1", "low = 8").replace("high = 8", "high = 2").replace("default = 1", "default = 2"),
        "error: workload.params.threads: low 8 is above high 2; fix: swap them",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_job_exits_2_with_one_line_and_stores_nothing(tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    (tmp_path / "bench.py").write_text("print('never run')\n")
    job = tmp_path / "job.toml"
    job.write_text(text)
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "tunesmith.agents.frontends.cli", "run", str(job), "--plain", "--llm", "off",
           "--state-dir", str(state)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert expected in lines[0] and "; fix: " in lines[0]
    db = state / "tunesmith.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == 0
