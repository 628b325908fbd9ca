"""An internal error writes its traceback to crash.log through the redactor, and says one line on screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunesmith.agents import study
from tunesmith.agents.frontends.cli import app

CANARY = "sk-canary-crashlog-0123456789abcdef"

JOB = """
name = "crash"
target = "command"
[workload]
command = ["sh", "-c", "echo '{\\"seconds\\": 1.0}' > \\"$TUNESMITH_RESULT\\"", "{n}"]
[workload.params.n]
kind = "int"
low = 1
high = 3
default = 1
[budget]
trials = 2
"""


def test_internal_error_keeps_the_secret_out_of_crash_log_and_screen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    job = tmp_path / "job.toml"
    job.write_text(JOB, encoding="utf-8")

    def explode(session):  # noqa: ANN001, ANN202 - stands in for a bug deep inside the loop
        raise RuntimeError(f"unexpected reply {CANARY} from somewhere")

    monkeypatch.setattr(study, "drive", explode)
    state = tmp_path / "state"
    result = CliRunner().invoke(app, ["run", str(job), "--plain", "--llm", "off", "--state-dir", str(state)])
    assert result.exit_code == 1
    crash = (state / "crash.log").read_text(encoding="utf-8")
    assert "RuntimeError" in crash and "Traceback" in crash
    assert CANARY not in crash
    assert CANARY not in result.output
    assert "internal error: RuntimeError" in result.output
