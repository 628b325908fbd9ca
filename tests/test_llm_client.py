"""LLM client: structured output, retries, ledger, budget, redaction, backends and mode resolution."""

from __future__ import annotations

import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import BaseModel

from tunesmith.agents.llm import (
    LLM_BACKENDS,
    CassetteBackend,
    ChatReply,
    LLMBudgetExceeded,
    LLMClient,
    LLMOutputError,
    LLMRequestError,
    OpenAIBackend,
    ScriptedBackend,
    TokenLedger,
    local_server,
    redact,
    register_secret,
    resolve_llm,
)
from tunesmith.agents.llm import config as llm_config
from tunesmith.agents.llm.gguf import read_gguf_metadata
from tunesmith.agents.llm.structured import extract_json, strict_schema
from tunesmith.runners.errors import InfrastructureError, JobError, TunesmithError
from tunesmith.runners.job import LLMConfig

KEY = "sk-test-ABCDEF1234567890secret"
ASK = [{"role": "system", "content": "You tune things."}, {"role": "user", "content": "Pick a block size."}]


class Answer(BaseModel):
    answer: str
    confidence: float


class Inner(BaseModel):
    name: str
    value: int | None = None


class Outer(BaseModel):
    items: list[Inner]


def client(replies, **kw) -> tuple[LLMClient, ScriptedBackend]:
    backend = ScriptedBackend(replies)
    return LLMClient(backend, **kw), backend


# structured output -------------------------------------------------------------------------------------
def test_valid_output_parses_with_strict_json_schema():
    c, b = client(['{"answer": "64", "confidence": 0.8}'])
    out = c.structured(ASK, Answer, purpose="plan")
    assert out == Answer(answer="64", confidence=0.8)
    fmt = b.calls[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert b.sent[0] == ASK  # json_schema mode adds no prompt text
    assert c.ledger.by_purpose["plan"].calls == 1 and c.ledger.by_purpose["plan"].retries == 0


def test_malformed_then_valid_retries_once_and_feeds_back_the_error():
    c, b = client(['{"answer": "64", "confidence": "very"}', '{"answer": "64", "confidence": 0.5}'])
    assert c.structured(ASK, Answer, purpose="plan").confidence == 0.5
    assert len(b.calls) == 2
    usage = c.ledger.by_purpose["plan"]
    assert usage.calls == 2 and usage.retries == 1 and usage.failures == 0
    second = b.sent[1]
    assert second[-2] == {"role": "assistant", "content": '{"answer": "64", "confidence": "very"}'}
    assert second[-1]["role"] == "user"
    assert "confidence" in second[-1]["content"] and "valid number" in second[-1]["content"]


def test_always_malformed_raises_after_max_retries_plus_one_calls():
    c, b = client(["no json here"] * 10, max_retries=2)
    with pytest.raises(LLMOutputError) as info:
        c.structured(ASK, Answer, purpose="judge")
    assert len(b.calls) == 3
    text = str(info.value)
    assert "\n" not in text and "Answer" in text and "judge" in text and "3 attempts" in text
    assert c.ledger.by_purpose["judge"].failures == 1 and c.ledger.by_purpose["judge"].retries == 2


def test_fences_and_prose_are_stripped():
    reply = 'Sure! Here it is:\n```json\n{"answer": "x", "confidence": 1}\n```\nHope that helps {'
    c, _ = client([reply])
    assert c.structured(ASK, Answer, purpose="p") == Answer(answer="x", confidence=1.0)
    assert extract_json('noise {bad} then {"a": [1, 2]} tail') == {"a": [1, 2]}
    with pytest.raises(ValueError, match="empty"):
        extract_json("   ")


def test_json_object_and_prompt_modes_put_the_schema_in_the_prompt():
    c, b = client(['{"answer": "a", "confidence": 0}'], structured_mode="json_object")
    c.structured(ASK, Answer, purpose="p")
    fmt = b.calls[0]["response_format"]
    assert fmt["type"] == "json_object" and fmt["schema"]["properties"]["confidence"]["type"] == "number"
    system = b.sent[0][0]["content"]
    assert system.startswith("You tune things.") and "answer (string); confidence (number)" in system
    c, b = client(['{"answer": "a", "confidence": 0}'], structured_mode="prompt")
    c.structured([{"role": "user", "content": "hi"}], Answer, purpose="p")
    assert b.calls[0]["response_format"] is None
    assert b.sent[0][0]["role"] == "system" and "JSON schema" not in b.sent[0][0]["content"]
    c, b = client(['{"items": [{"name": "BLOCK", "value": 64}]}'], structured_mode="prompt")
    assert c.structured([{"role": "user", "content": "hi"}], Outer, purpose="p").items[0].value == 64
    system = b.sent[0][0]["content"]
    assert "items (list of Inner object)" in system and "JSON schema" in system and '"Inner"' in system


def test_strict_schema_closes_nested_objects():
    schema = strict_schema(Outer)
    inner = schema["$defs"]["Inner"]
    assert inner["additionalProperties"] is False and inner["required"] == ["name", "value"]
    assert "default" not in inner["properties"]["value"]
    assert schema["required"] == ["items"]


def test_auto_mode_falls_back_when_the_endpoint_rejects_json_schema():
    def reply(messages):
        return '{"answer": "ok", "confidence": 0.1}'

    class Picky(ScriptedBackend):
        broken = False

        def chat(self, messages, *, response_format=None, max_tokens=1024, temperature=0.0):
            if self.broken or (response_format and response_format["type"] == "json_schema"):
                self.calls.append({"messages": messages, "response_format": response_format, "max_tokens": 0})
                raise LLMRequestError("endpoint answered HTTP 500: bad format", "x", status=500)
            return super().chat(messages, response_format=response_format, max_tokens=max_tokens)

    backend = Picky(reply)
    c = LLMClient(backend, structured_mode="auto")
    assert c.structured(ASK, Answer, purpose="p").answer == "ok"
    assert c.mode == "json_object"
    assert [call["response_format"]["type"] for call in backend.calls] == ["json_schema", "json_object"]
    c.structured(ASK, Answer, purpose="p")  # remembered: no second json_schema attempt
    assert len(backend.calls) == 3
    backend.broken = True  # a failure after the format was accepted is the server's, not the format's
    with pytest.raises(LLMRequestError, match="HTTP 500"):
        c.structured(ASK, Answer, purpose="p")
    assert c.mode == "json_object"
    fixed = LLMClient(Picky(reply), structured_mode="json_schema")
    with pytest.raises(LLMRequestError):
        fixed.structured(ASK, Answer, purpose="p")


# ledger and budget -------------------------------------------------------------------------------------
def test_ledger_counts_tokens_and_cost_per_purpose():
    c, b = client(['{"answer": "a", "confidence": 0}', "free text reply"], prices=(2.0, 10.0))
    c.structured(ASK, Answer, purpose="plan")
    assert c.chat(ASK, purpose="explain") == "free text reply"
    plan, explain = c.ledger.by_purpose["plan"], c.ledger.by_purpose["explain"]
    assert (
        plan.prompt_tokens > 0
        and plan.completion_tokens == (len('{"answer": "a", "confidence": 0}') + 3) // 4
    )
    assert explain.completion_tokens == 4
    total = c.ledger.total
    assert total.calls == 2 and total.tokens == plan.tokens + explain.tokens
    expected = (total.prompt_tokens * 2.0 + total.completion_tokens * 10.0) / 1e6
    assert total.cost == pytest.approx(expected)
    again = TokenLedger.from_dict(json.loads(c.ledger.dump()))
    assert again.total == total and again.models == {"scripted": 2}
    assert "2 calls" in c.ledger.summary()


def test_budget_exceeded_raises_before_the_call():
    c, b = client(['{"answer": "a", "confidence": 0}'], token_budget=500)
    with pytest.raises(LLMBudgetExceeded, match="budget"):
        c.structured(ASK, Answer, purpose="plan", max_tokens=1000)
    assert b.calls == []
    c.structured(ASK, Answer, purpose="plan", max_tokens=100)  # fits
    assert len(b.calls) == 1
    TokenLedger().check_budget(None, 10**9)


# redaction ---------------------------------------------------------------------------------------------
def test_key_never_appears_in_errors_or_the_ledger():
    register_secret(KEY)
    assert KEY not in redact(f"Authorization: Bearer {KEY}") and "sk-" in redact("key sk-abcdefghijk")
    assert "plainkey123" not in redact("api_key=plainkey123")
    c, _ = client([RuntimeError(f"boom with {KEY}")])
    with pytest.raises(InfrastructureError) as info:
        c.chat(ASK, purpose="p")
    assert KEY not in str(info.value) and "boom" in str(info.value)
    c, _ = client([InfrastructureError(f"leaky {KEY}", "fix")])
    with pytest.raises(InfrastructureError) as info:
        c.chat(ASK, purpose="p")
    assert KEY not in str(info.value)
    c, _ = client([f'{{"answer": 1, "confidence": "{KEY}"}}'] * 2, max_retries=1)
    with pytest.raises(LLMOutputError) as info:
        c.structured(ASK, Answer, purpose=f"plan {KEY}")
    assert KEY not in str(info.value)
    c.ledger.record(f"purpose {KEY}", prompt_tokens=1, completion_tokens=1, model=KEY)
    assert KEY not in c.ledger.dump()


def test_openai_backend_unreachable_is_one_line_without_key():
    backend = OpenAIBackend(base_url="http://127.0.0.1:9/v1", api_key=KEY, model="m", transport_retries=0)
    with pytest.raises(LLMRequestError) as info:
        backend.chat(ASK)
    text = str(info.value)
    assert KEY not in text and "\n" not in text and "unreachable" in text and info.value.status is None


# a fake OpenAI-compatible server, so OpenAIBackend is tested for real over HTTP ---------------------------
class _Fake(BaseHTTPRequestHandler):
    bodies: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append({"body": body, "auth": self.headers.get("Authorization")})
        if type(self).status != 200:
            payload = {"error": {"message": f"server exploded\nsecond line {KEY}", "type": "server_error"}}
        else:
            payload = {
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": '{"answer": "hi", "confidence": 0.9}'}}],
                "usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30},
            }  # fmt: skip
        data = json.dumps(payload).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_server():
    _Fake.bodies, _Fake.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_backend_over_http(fake_server):
    backend = OpenAIBackend(base_url=fake_server, api_key=KEY, model="tiny", transport_retries=0)
    c = LLMClient(backend, structured_mode="json_object")
    assert c.structured(ASK, Answer, purpose="p") == Answer(answer="hi", confidence=0.9)
    sent = _Fake.bodies[0]
    assert sent["body"]["model"] == "tiny" and sent["body"]["response_format"]["type"] == "json_object"
    assert sent["auth"] == f"Bearer {KEY}"
    assert c.ledger.total.prompt_tokens == 21 and c.ledger.total.completion_tokens == 9
    _Fake.status = 500
    with pytest.raises(LLMRequestError) as info:
        backend.chat(ASK)
    assert info.value.status == 500 and "HTTP 500" in str(info.value)
    assert KEY not in str(info.value) and "\n" not in str(info.value)


# backends: registry, conformance, cassette ---------------------------------------------------------------
def test_registry_names_every_backend():
    assert {"openai", "scripted", "cassette"} <= set(LLM_BACKENDS.names())
    assert LLM_BACKENDS.get("cassette") is CassetteBackend
    with pytest.raises(JobError):
        LLM_BACKENDS.get("nope")


@pytest.mark.parametrize("name", ["scripted", "cassette", "openai"])
def test_backend_conformance(name, tmp_path, request):
    if name == "scripted":
        backend = LLM_BACKENDS.create("scripted", ['{"answer": "hi", "confidence": 0.9}'])
    elif name == "cassette":
        inner = ScriptedBackend(['{"answer": "hi", "confidence": 0.9}'])
        backend = LLM_BACKENDS.create("cassette", tmp_path / "c.json", mode="record", inner=inner)
    else:
        url = request.getfixturevalue("fake_server")
        backend = LLM_BACKENDS.create("openai", base_url=url, model="m", transport_retries=0)
    reply = backend.chat(ASK, response_format={"type": "json_object"}, max_tokens=50, temperature=0.0)
    assert isinstance(reply, ChatReply) and Answer.model_validate_json(reply.content).answer == "hi"
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0 and reply.model
    assert backend.describe()


def test_cassette_records_then_replays_and_refuses_unknown_requests(tmp_path):
    path = tmp_path / "cassettes" / "plan.json"
    inner = ScriptedBackend([f'{{"answer": "recorded", "confidence": 1}}  {KEY}'])
    recorder = CassetteBackend(path, mode="record", inner=inner)
    LLMClient(recorder, structured_mode="json_object").structured(ASK, Answer, purpose="p")
    assert len(recorder) == 1 and path.exists()
    replay = CassetteBackend(path)
    c = LLMClient(replay, structured_mode="json_object")
    assert c.structured(ASK, Answer, purpose="p").answer == "recorded"
    assert replay.hits == 1 and c.ledger.total.completion_tokens > 0
    with pytest.raises(InfrastructureError, match="no recorded reply") as info:
        c.structured([{"role": "user", "content": "something new"}], Answer, purpose="p")
    assert "record" in info.value.fix and "\n" not in str(info.value)
    with pytest.raises(InfrastructureError, match="does not exist"):
        CassetteBackend(tmp_path / "missing.json")


def test_scripted_backend_runs_out_clearly():
    b = ScriptedBackend(["one"])
    b.chat(ASK)
    with pytest.raises(InfrastructureError, match="ran out of replies"):
        b.chat(ASK)


# mode resolution ---------------------------------------------------------------------------------------
def test_resolve_offline_modes():
    setup = resolve_llm(LLMConfig(), None, env={})
    assert setup.mode == "offline" and setup.client is None
    assert setup.description == llm_config.OFFLINE_DESCRIPTION and setup.description.startswith("offline:")
    off = resolve_llm(LLMConfig(base_url="http://x/v1", model="m"), "off", env={"OPENAI_API_KEY": KEY})
    assert off.mode == "offline" and off.client is None and "off" in off.description
    with pytest.raises(JobError, match="no LLM endpoint"):
        resolve_llm(LLMConfig(mode="endpoint"), None, env={})
    with pytest.raises(JobError, match="unknown LLM mode"):
        resolve_llm(LLMConfig(), "sometimes", env={})


def test_resolve_endpoint_sources_in_order():
    env = {"TUNESMITH_LLM_BASE_URL": "http://127.0.0.1:8080/v1", "TUNESMITH_LLM_MODEL": "qwen"}
    with resolve_llm(LLMConfig(max_retries=1, price_in_per_mtok=3.0), None, env=env) as setup:
        assert setup.mode == "endpoint" and setup.description == "endpoint: qwen at http://127.0.0.1:8080/v1"
        assert setup.client.structured_mode == "auto" and setup.client.max_retries == 1
        assert setup.client.ledger.price_in_per_mtok == 3.0
    job = LLMConfig(base_url="http://10.0.0.5:8000/v1/", model="llama")
    assert resolve_llm(job, None, env=env).description == "endpoint: llama at http://10.0.0.5:8000/v1"
    openai = resolve_llm(LLMConfig(), None, env={"OPENAI_API_KEY": KEY})
    assert openai.description == "endpoint: gpt-4o-mini at https://api.openai.com/v1"
    assert openai.client.structured_mode == "json_schema" and KEY not in repr(openai)
    custom = resolve_llm(LLMConfig(api_key_env="MY_KEY"), "endpoint", env={"MY_KEY": "abcd-1234"})
    assert custom.mode == "endpoint"
    forced = resolve_llm(LLMConfig(), None, env={**env, "TUNESMITH_LLM_STRUCTURED": "prompt"})
    assert forced.client.structured_mode == "prompt"
    with pytest.raises(JobError, match="no model named"):
        resolve_llm(LLMConfig(base_url="http://127.0.0.1:1/v1"), None, env={})
    with pytest.raises(TunesmithError, match="needs an API key"):
        resolve_llm(LLMConfig(base_url="https://api.openai.com/v1"), None, env={})


def test_local_mode_without_the_extra_is_one_line(monkeypatch):
    real = local_server.importlib.util.find_spec
    monkeypatch.setattr(
        local_server.importlib.util, "find_spec", lambda name: None if name == "llama_cpp" else real(name)
    )
    with pytest.raises(InfrastructureError) as info:
        resolve_llm(LLMConfig(), "local", env={})
    assert str(info.value).startswith("--llm local needs the local-llm extra")
    assert str(info.value).endswith("fix: pip install -e '.[local-llm]'")


def test_gguf_reader_reads_scalars_and_skips_arrays(tmp_path):
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    kv = s("general.name") + struct.pack("<I", 8) + s("tiny")
    kv += s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s("a") + s("bc")
    kv += s("llama.context_length") + struct.pack("<II", 4, 4096)
    kv += s("tokenizer.chat_template") + struct.pack("<I", 8) + s("{{ messages }}")
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 4) + kv)
    meta = read_gguf_metadata(path)
    assert meta["general.name"] == "tiny" and meta["llama.context_length"] == 4096
    assert meta["tokenizer.ggml.tokens"] is None and meta["tokenizer.chat_template"] == "{{ messages }}"
    (tmp_path / "bad.gguf").write_bytes(b"NOPE")
    with pytest.raises(InfrastructureError, match="bad magic"):
        read_gguf_metadata(tmp_path / "bad.gguf")
