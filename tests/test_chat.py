"""`tune chat` as a person uses it: the plain REPL through stdin and a pseudo-terminal, the Textual app through
its pilot — draft a job from words, approve it, watch it run, ask why — and a scripted model driving tool calls."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.test_init import PROG, PY, TUNE, tune
from tunesmith.agents.chat.intents import recognise
from tunesmith.agents.chat.session import ChatEvent, ChatSession
from tunesmith.agents.llm import LLMClient, ScriptedBackend

DRAFT = f"please tune `{PY} prog.py --threads 2 --fast` with 2 trials"


def chat_argv(*extra: str) -> list[str]:
    base = [str(TUNE)] if TUNE.exists() else [sys.executable, "-m", "tunesmith.agents.frontends.cli"]
    return [*base, "chat", *extra]


def quiet_env() -> dict[str, str]:
    env = {**os.environ, "LANGSMITH_TRACING": "false", "TUNESMITH_LLM_BASE_URL": "", "TERM": "xterm",
           "TUNESMITH_KNOWLEDGE": "off"}  # the user's own knowledge store stays out of the tests
    env.pop("OPENAI_API_KEY", None)
    return env


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "prog.py").write_text(PROG)
    return tmp_path


@pytest.fixture(scope="module")
def studied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose state dir holds one finished study 'prog' of 2 trials (run by `tune run -- CMD`)."""
    folder = tmp_path_factory.mktemp("studied")
    (folder / "prog.py").write_text(PROG)
    res = tune("run", "--plain", "--llm", "off", "--trials", "2", "--", PY, "prog.py", "--threads", "2", "--fast",
               cwd=folder)
    assert res.returncode == 0, res.stderr
    return folder


@pytest.mark.parametrize("line, kind, args", [
    ("why threads 8?", "why", {"param": "threads", "value": "8"}),
    ("what did trial 12 change?", "show", {"trial": 12}),
    ("compare 3 and 7", "compare", {"a": 3, "b": 7}),
    ("best", "best", {}),
    ("status of study prog", "status", {"study": "prog"}),
    ("list", "list", {}),
    ("why trial 2?", "why", {"trial": 2}),
    ("tune `prog --bs 4` for throughput, 6 trials", "draft", {"argv": ["prog", "--bs", "4"], "metric": "throughput",
                                                               "trials": 6}),
    ("what should I have for lunch", "open", {}),
])
def test_rules_recognise_the_questions(line: str, kind: str, args: dict) -> None:
    intent = recognise(line)
    assert (intent.kind, intent.args) == (kind, args)
    assert recognise("yes", pending=True).kind == "approve" and recognise("trials 4").kind == "open"  # edits need a draft


@pytest.mark.slow
def test_plain_repl_through_stdin_drafts_waits_for_yes_runs_and_answers_why(folder: Path) -> None:
    lines = [DRAFT, "status", "yes", "why trial 2?", "why threads 2", "compare 2 and 1", "what is the meaning of life",
             "quit"]
    res = subprocess.run(chat_argv("--plain"), input="\n".join(lines) + "\n", cwd=folder, capture_output=True, text=True,
                         timeout=300, env=quiet_env())
    out = res.stdout
    assert res.returncode == 0, res.stderr + out
    assert "---- drafted job ----" in out and 'values = [1, 2, 4]' in out and "trials = 2" in out
    draft_at, yes_at = out.index("run this study now?"), out.index("running study 'prog'")
    assert "no studies yet" in out[draft_at:yes_at]  # nothing ran before the yes
    assert "[run] trial #2:" in out and "stopped: trial budget spent (2/2)" in out
    why = out[out.index("tune> trial #2 of prog"):]
    assert "changed from the default: threads 2 -> " in why and "verdict:" in why and "why it was tried:" in why
    assert "trial #1 of prog" in out  # "why threads 2" is about the trial that set threads to 2 (the default)
    assert "prog: trial #2 vs #1:" in out and "needs an LLM" in out and out.rstrip().endswith("bye")


@pytest.mark.slow
def test_plain_repl_on_a_pseudo_terminal(folder: Path) -> None:
    argv = chat_argv("--plain")
    child = pexpect.spawn(argv[0], argv[1:], cwd=str(folder), env=quiet_env(), encoding="utf-8", timeout=120)
    child.expect("Describe a job")
    child.expect_exact("you> ")
    child.sendline(DRAFT)
    child.expect_exact("run this study now?")
    child.expect_exact("you> ")
    child.sendline("no")
    child.expect("not running it; the draft stays in")
    assert not (folder / ".tunesmith" / "tunesmith.db").exists()
    child.sendline(DRAFT)
    child.expect_exact("run this study now?")
    child.sendline("yes")
    child.expect(r"\[run\] trial #1:")
    child.expect(r"stopped: trial budget spent \(2/2\)")
    child.expect_exact("you> ")
    child.sendline("why trial 2")
    child.expect(r"trial #2 of prog \(\w+\): .*verdict: \w+")
    child.sendline("quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.slow
def test_textual_app_through_its_pilot(folder: Path) -> None:
    from textual.widgets import Input

    from tunesmith.agents.chat.tui import ChatApp

    async def scenario() -> list[str]:
        app = ChatApp(folder / ".tunesmith", cwd=folder, banner="hello")
        async with app.run_test() as pilot:
            for line in (DRAFT, "yes", "why trial 2", "quit"):
                app.query_one(Input).value = line
                await pilot.press("enter")
                await app.workers.wait_for_complete()
                await pilot.pause()
        return app.transcript

    shown = asyncio.run(scenario())
    text = "\n".join(shown)
    assert shown[0] == "tune> hello" and f"you> {DRAFT}" in shown
    assert "---- drafted job ----" in text and "[run] trial #2:" in text
    assert text.index("run this study now?") < text.index("running study 'prog'")
    assert any(s.startswith("tune> trial #2 of prog") and "verdict:" in s for s in shown)


def _session(state: Path, replies, events: list[ChatEvent]) -> tuple[ChatSession, ScriptedBackend]:
    backend = ScriptedBackend(replies)
    return ChatSession(state, emit=events.append, llm=LLMClient(backend, max_retries=1)), backend


def test_scripted_model_drives_the_tool_calls(studied: Path) -> None:
    events: list[ChatEvent] = []
    session, backend = _session(studied / ".tunesmith", [
        json.dumps({"tool": "compare_trials", "arguments": {"study": "prog", "a": 2, "b": 1}}),
        json.dumps({"tool": "answer", "arguments": {}, "answer": "Trial #2 changed threads; the judge called it noise."}),
        json.dumps({"tool": "show_trial", "arguments": {"study": "prog", "trial": 99}}),  # a bad call: the model sees why
        json.dumps({"tool": "list_studies", "arguments": {}}),
        json.dumps({"tool": "answer", "arguments": {}, "answer": "Only #1 and #2 exist in prog."}),
    ], events)
    session.handle("compare 2 and 1")
    forced = backend.calls[0]["response_format"]["json_schema"]["schema"]
    assert json.dumps(forced).count("compare_trials") >= 1 and "show_trial" not in json.dumps(forced)  # forced choice
    assert "compare_trials" in backend.calls[0]["messages"][0]["content"]  # the tools' specs are offered
    tool_result = backend.calls[1]["messages"][-1]["content"]
    assert "The tool compare_trials returned:" in tool_result and '"config_diff"' in tool_result
    assert [(e.kind, e.text) for e in events[-3:-1]] == [
        ("tool", "compare_trials(study=prog, a=2, b=1)"),
        ("say", "Trial #2 changed threads; the judge called it noise.")]
    assert events[-1].text.startswith("from the store: prog: trial #2 vs #1:")  # the rules' grounded answer follows
    session.handle("what happened in trial 99, and which trials exist?")
    assert "has no trial #99" in backend.calls[3]["messages"][-1]["content"]  # call_tool's one-line error reached it
    assert events[-2] == ChatEvent("say", "Only #1 and #2 exist in prog.")
    assert events[-1].kind == "error" and "has no trial #99; fix: use a number from 1 to " in events[-1].text


def test_failing_model_falls_back_to_the_rules(studied: Path) -> None:
    from tunesmith.agents.llm import LLMRequestError

    events: list[ChatEvent] = []
    session, _ = _session(studied / ".tunesmith", [LLMRequestError("endpoint down")] * 4, events)
    session.handle("best")
    assert events[-2].kind == "error" and "answering by rules" in events[-2].text
    assert events[-1].kind == "say" and events[-1].text.startswith("prog: best: trial #")


def test_edits_to_the_draft_and_bad_input(folder: Path) -> None:
    events: list[ChatEvent] = []
    session = ChatSession(folder / ".tunesmith", emit=events.append, cwd=folder)
    session.handle("yes")
    assert events[-1] == ChatEvent("say", "no drafted job is waiting; describe one with its command in backticks")
    session.handle(DRAFT)
    session.handle("values threads 1,8")
    job = (folder / ".tunesmith" / "jobs" / "prog.toml").read_text()
    assert "values = [1, 8]" in job and events[-1].kind == "ask"
    session.handle("values nosuch 1,2")
    assert events[-1].kind == "error" and "no nosuch" in events[-1].text
    session.handle("trials 3")
    assert "trials = 3" in (folder / ".tunesmith" / "jobs" / "prog.toml").read_text()
    session.handle("tune `no-such-prog-xyz --threads 2`")
    assert events[-1] == ChatEvent("error", "program 'no-such-prog-xyz' not found; fix: check the spelling, or give its full path")
    assert not (folder / ".tunesmith" / "tunesmith.db").exists()


def test_garbled_model_arguments_are_repaired_from_the_question(studied: Path) -> None:
    events: list[ChatEvent] = []
    session, backend = _session(studied / ".tunesmith", [
        json.dumps({"tool": "show_trial", "arguments": {"study": "#/$defs/X", "trial": 77}}),  # as SmolLM2 does
        json.dumps({"tool": "answer", "arguments": {}, "answer": "Trial #2 tried threads 4."}),
    ], events)
    session.handle("what did trial 2 change?")
    assert events[0] == ChatEvent("tool", "show_trial(study=prog, trial=2)")  # study from the chat, trial from the rules
    assert '"number": 2' in backend.calls[1]["messages"][-1]["content"]
    assert events[1] == ChatEvent("say", "Trial #2 tried threads 4.")
    assert events[-1].text.startswith("from the store: trial #2 of prog")


def test_why_cites_passages_from_the_knowledge_source(studied: Path) -> None:
    from tunesmith.tools.operations import KnowledgeHit

    class Manual:
        """A knowledge source standing in for the knowledge store's retriever."""

        def __init__(self) -> None:
            self.queries: list[str] = []

        def search(self, query: str, k: int, filters: dict[str, str]) -> list[KnowledgeHit]:
            self.queries.append(query)
            return [KnowledgeHit(text="--threads N: more threads than cores slow the loop down", score=0.8,
                                 source="manuals:prog-help", citation="prog-help, lines 4-5 (chunk c1)")]

    events: list[ChatEvent] = []
    manual = Manual()
    ChatSession(studied / ".tunesmith", emit=events.append, knowledge=manual).handle("why trial 2?")
    assert manual.queries and "threads" in manual.queries[0]
    assert events[-1].text.endswith("lessons: [prog-help, lines 4-5 (chunk c1)] --threads N: more threads than cores slow the loop down")
