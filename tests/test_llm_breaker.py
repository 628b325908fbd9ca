"""A slow or failing LLM endpoint: failed calls are counted, timeouts are not repeated, and after a few
failures in a row the client stops calling the endpoint and says so once (screen, trail and report)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import BaseModel

from tests.synthetic import SyntheticTarget
from tunesmith.agents.llm import (
    LLMBudgetExceeded,
    LLMClient,
    LLMOutputError,
    LLMRequestError,
    LLMUnavailable,
    OpenAIBackend,
    ScriptedBackend,
    TokenLedger,
)
from tunesmith.agents.strategies.llm_planner import LLMPlannerStrategy
from tunesmith.agents.strategies.offline_planner import OfflinePlannerStrategy
from tunesmith.runners.errors import InfrastructureError
from tunesmith.runners.job import Objective
from tunesmith.tools.plugins import TARGETS

ASK = [{"role": "user", "content": "Pick a block size."}]
GOOD = '{"answer": "64"}'


class Answer(BaseModel):
    answer: str


# real local servers: one that never answers, one that always fails -------------------------------------
@pytest.fixture()
def hanging_server():
    """Accepts every connection and never answers; ``accepted`` counts the connections."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.1)
    state = SimpleNamespace(accepted=0, conns=[], stop=False)

    def serve() -> None:
        while not state.stop:
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            state.accepted += 1
            state.conns.append(conn)  # held open, never answered

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1", state
    state.stop = True
    thread.join(2)
    for conn in state.conns:
        conn.close()
    sock.close()


class _Failing(BaseHTTPRequestHandler):
    requests = 0

    def do_POST(self):  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests += 1
        data = json.dumps({"error": {"message": "the model crashed", "type": "server_error"}}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def failing_server():
    _Failing.requests = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def eight_calls(client: LLMClient) -> list[type[BaseException]]:
    raised = []
    for _ in range(8):
        with pytest.raises(InfrastructureError) as info:
            client.structured(ASK, Answer, purpose="planner")
        raised.append(type(info.value))
    return raised


def test_hanging_endpoint_costs_one_timeout_per_call_then_the_breaker_opens(hanging_server):
    url, state = hanging_server
    client = LLMClient(OpenAIBackend(base_url=url, model="m", timeout=0.5), structured_mode="json_object")
    start = time.monotonic()
    raised = eight_calls(client)
    elapsed = time.monotonic() - start
    assert raised == [LLMRequestError] * 3 + [LLMUnavailable] * 5
    assert state.accepted == 3  # one request per call, none repeated, none after the breaker opened
    assert elapsed < 8 * 3 * 0.5 / 2  # was 8 calls x 3 attempts x the timeout
    usage = client.ledger.total
    assert usage.calls == 3 and usage.failed_calls == 3 and usage.retries == 0
    note = f"LLM endpoint {url} failed 3 times in a row (timeout after 0.5 s); continuing offline for the rest of the study"
    assert client.ledger.summary().startswith("LLM: 3 calls (0 retries, 3 failed), 0+0 tokens")
    assert client.ledger.summary().endswith(note) and client.ledger.to_dict()["notes"] == [note]
    assert not client.available
    assert client.take_notice() == note and client.take_notice() is None  # handed out once


def test_http_500_is_repeated_once_then_counted_and_the_breaker_opens(failing_server):
    client = LLMClient(OpenAIBackend(base_url=failing_server, model="m", timeout=5), structured_mode="json_object",
                       retry_backoff_s=0)  # fmt: skip
    raised = eight_calls(client)
    assert raised == [LLMRequestError] * 3 + [LLMUnavailable] * 5
    assert _Failing.requests == 6  # 3 calls x (1 + 1 repeat)
    usage = client.ledger.by_purpose["planner"]
    assert usage.calls == 6 and usage.failed_calls == 6 and usage.retries == 3
    assert "6 calls (3 retries, 6 failed)" in client.ledger.summary()
    assert "failed 3 times in a row (HTTP 500)" in client.ledger.summary()


# the client's rules, on a scripted backend --------------------------------------------------------------
def timeout_error() -> LLMRequestError:
    return LLMRequestError("LLM endpoint x timed out after 1 s", "raise it", timeout=True)


def unreachable() -> LLMRequestError:
    return LLMRequestError("LLM endpoint x is unreachable (refused)", "start it")


def test_a_timed_out_request_is_not_sent_again():
    backend = ScriptedBackend([timeout_error(), GOOD])
    client = LLMClient(backend, structured_mode="json_object", retry_backoff_s=0)
    with pytest.raises(LLMRequestError, match="timed out"):
        client.structured(ASK, Answer, purpose="p")
    assert len(backend.calls) == 1 and client.ledger.total.failed_calls == 1


def test_transport_error_is_sent_again_and_both_attempts_are_counted():
    backend = ScriptedBackend([unreachable(), GOOD])
    client = LLMClient(backend, structured_mode="json_object", retry_backoff_s=0)
    assert client.structured(ASK, Answer, purpose="p").answer == "64"
    usage = client.ledger.total
    assert usage.calls == 2 and usage.failed_calls == 1 and usage.retries == 1
    refused = ScriptedBackend([LLMRequestError("HTTP 401", "key", status=401), GOOD])
    with pytest.raises(LLMRequestError):
        LLMClient(refused, structured_mode="json_object", retry_backoff_s=0).structured(ASK, Answer, purpose="p")
    assert len(refused.calls) == 1  # a refusal is not transport trouble


def test_a_success_resets_the_count_of_failures_in_a_row():
    script = [timeout_error(), timeout_error(), GOOD, timeout_error(), timeout_error(), GOOD]
    client = LLMClient(ScriptedBackend(script), structured_mode="json_object")
    for item in script:
        if isinstance(item, str):
            client.structured(ASK, Answer, purpose="p")
        else:
            with pytest.raises(LLMRequestError):
                client.structured(ASK, Answer, purpose="p")
    assert client.available and client.take_notice() is None and client.ledger.total.failed_calls == 4


def test_invalid_output_does_not_open_the_breaker():
    client = LLMClient(ScriptedBackend(["not json"] * 8), structured_mode="json_object", max_retries=1)
    for _ in range(4):
        with pytest.raises(LLMOutputError):
            client.structured(ASK, Answer, purpose="p")
    assert client.available and client.ledger.total.failures == 4 and client.ledger.total.failed_calls == 0
    assert "(4 retries, 4 without valid output)" in client.ledger.summary()


def test_free_text_calls_count_toward_the_breaker_too():
    client = LLMClient(ScriptedBackend([RuntimeError("boom")] * 3), breaker_after=2)
    for expected in (InfrastructureError, InfrastructureError, LLMUnavailable):
        with pytest.raises(expected):
            client.chat(ASK, purpose="explain")
    assert "failed 2 times in a row (LLM backend scripted failed: RuntimeError: boom)" in client.take_notice()


def test_ledger_keeps_failures_and_notes_across_a_resume_and_budget_has_its_own_exit_code():
    ledger = TokenLedger()
    ledger.record_failed_call("planner")
    ledger.record_failed_call("planner", retry=True)
    ledger.note("LLM endpoint x failed 3 times in a row (HTTP 500); continuing offline for the rest of the study")
    again = TokenLedger.from_dict(json.loads(ledger.dump()))
    assert again.total.failed_calls == 2 and again.total.retries == 1 and again.notes == ledger.notes
    assert TokenLedger.from_dict({"by_purpose": {"p": {"calls": 1}}}).total.failed_calls == 0  # older stores
    assert LLMBudgetExceeded("spent").exit_code == 6


# the agents: the planner's prompt, and a study whose endpoint keeps failing -------------------------------
def test_planner_prompt_gives_the_trials_left_and_labels_the_batch_size():
    space = SyntheticTarget.base_space(None)  # type: ignore[arg-type]
    backend = ScriptedBackend(['{"reasoning": "", "candidates": [{"config": {"threads": 2}, "rationale": "x"}]}'])
    llm = LLMClient(backend, structured_mode="json_object")
    offline = OfflinePlannerStrategy(space, Objective())
    planner = LLMPlannerStrategy(space, Objective(), llm=llm, fallback=offline, trials_left=lambda: 17)
    assert planner._from_llm([], 2, set())[0].config["threads"] == 2
    prompt = backend.sent[0][-1]["content"]
    assert "Trials left in the study's budget: 17." in prompt
    assert "This round's batch size: propose at most 2 configuration(s)." in prompt
    assert "Budget left" not in prompt


def test_a_study_with_a_failing_endpoint_says_so_once_and_finishes_offline(tmp_path: Path):
    from tunesmith.agents.budget import counted_trials
    from tunesmith.agents.study import drive, open_session
    from tunesmith.knowledge.report import build_report
    from tunesmith.runners.job import parse_job

    TARGETS.register("synthetic", SyntheticTarget)
    backend = ScriptedBackend(lambda messages: (_ for _ in ()).throw(timeout_error()))
    client = LLMClient(backend, structured_mode="json_object", retry_backoff_s=0)
    setup = SimpleNamespace(client=client, mode="endpoint", description="endpoint: scripted")
    job = parse_job({"name": "syn", "target": "synthetic", "budget": {"trials": 8}, "measure": {"repeats": 3}})
    seen: list[tuple[str, str]] = []
    with open_session(job, tmp_path, llm_setup=setup, observers=[lambda node, msg, data: seen.append((node, msg))]) \
            as session:  # fmt: skip
        outcome = drive(session)
        report = build_report(session.store, "syn")
    assert counted_trials(outcome.trials) == 8 and "trial budget spent" in outcome.stop_reason
    notes = [msg for _, msg in seen if "failed 3 times in a row" in msg]
    assert notes == ["LLM endpoint scripted failed 3 times in a row (timeout); continuing offline for the rest "
                     "of the study"]  # fmt: skip
    assert len(backend.calls) == 3  # nothing was sent after the breaker opened
    assert any(e["message"] == notes[0] for e in report["events"])
    usage = report["llm_usage"]
    assert usage["llm"]["total"]["failed_calls"] == 3 and usage["llm"]["notes"] == notes
    assert usage["summary"].startswith("LLM: 3 calls (0 retries, 3 failed)") and notes[0] in usage["summary"]
