"""Secrets: the redactor's rules, the workload environment without secrets, and a whole study that leaks nothing.

The end-to-end test plants an API key and a token in the environment, runs a study whose workload prints
its environment and whose scripted LLM echoes the key in every reply field, and then searches every file
under the state folder (databases, their -wal files, reports) for either value.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tunesmith.runners.base import RunSpec
from tunesmith.runners.job import parse_job
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.secrets import (
    MASK,
    is_secret_name,
    redact,
    redact_obj,
    register_secret,
    register_secret_name,
    scrubbed_env,
)
from tunesmith.runners.types import Candidate

KEY = "sk-canary-4f1e2d3c4b5a69788796a5b4"
TOKEN = "canarytoken-q7w8e9r0t1y2u3"  # not key-shaped: only its being in a secret variable hides it


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false-but-long")


def test_secret_names() -> None:
    for name in ("OPENAI_API_KEY", "HF_TOKEN", "MY_TOKEN", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY",
                 "PGPASSWORD", "DB_PASSWORD", "API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"):
        assert is_secret_name(name), name
    for name in ("PATH", "HOME", "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS", "PYTHONPATH"):
        assert not is_secret_name(name), name
    assert not is_secret_name("LLM_CRED_FOR_TESTS")
    register_secret_name("LLM_CRED_FOR_TESTS")
    assert is_secret_name("LLM_CRED_FOR_TESTS")


def test_redact_values_and_shapes(planted: None) -> None:
    text = f"key={KEY} token {TOKEN} tok false-but-long"
    out = redact(text)
    assert KEY not in out and TOKEN not in out and out.count(MASK) == 2
    assert "false-but-long" in out  # not a secret variable
    assert redact("Authorization: Bearer abcdefgh12345678") == f"Authorization: Bearer {MASK}"
    assert "plainkey123" not in redact("api_key=plainkey123")
    assert redact("ghp_" + "a" * 36) == MASK and redact("hf_" + "b" * 30) == MASK
    assert redact("AKIAABCDEFGHIJKLMNOP") == MASK
    assert redact("x" * 5) == "x" * 5 and redact("") == "" and redact(42) == "42"
    register_secret("registered-value-991")
    assert redact("a registered-value-991 b") == f"a {MASK} b"
    register_secret("short")  # too short to mask safely
    assert redact("short") == "short"
    # inside JSON text a secret with a quote or backslash is escaped: that form is masked too
    register_secret('quo"te\\secret')
    assert 'quo' not in redact(json.dumps({"v": 'quo"te\\secret'}))


def test_text_without_a_shape_literal_skips_the_shapes_and_every_shape_is_still_caught() -> None:
    """``redact`` runs the key-shape patterns only when a shape's literal is in the (ASCII) text."""
    from tunesmith.runners import secrets

    shapes = ["sk-abcdef123456", "ghp_" + "a" * 36, "github_pat_" + "b" * 30, "hf_" + "c" * 30,
              "AKIAABCDEFGHIJKLMNOP", "xoxb-1234567890ab", "BEARER abcdefgh1234", "Basic dXNlcjpwYXNzd29yZA==",
              "API-KEY: zzzzzzzz9", "AUTHORIZATION=qwertyuiop", "Secret: hunter22222", "PassWord='abcdefgh'",
              "ApiKey=abcdefghij", "paſsword=abcdefgh12"]  # 'ſ' matches 's' when case is ignored: not ASCII
    patterns = [p for p, _ in secrets._WHOLE] + secrets._AFTER
    for shape in shapes:
        assert any(p.search(shape) for p in patterns) and secrets.may_hold_shape(shape), shape
        assert MASK in redact(f"x {shape} y"), shape
    plain = 'trial #3: seconds median 0.013 {"p1": 3, "origin": "random"}'
    assert not secrets.may_hold_shape(plain) and redact(plain) == plain


def test_redact_obj_and_scrubbed_env(planted: None) -> None:
    nested = {"a": [KEY, {"b": (TOKEN, 3)}], KEY: 1.5, "n": None}
    out = redact_obj(nested)
    assert KEY not in json.dumps(out) and TOKEN not in json.dumps(out)
    assert out["a"][1]["b"][1] == 3 and out["n"] is None and out[MASK] == 1.5
    env = {"OPENAI_API_KEY": KEY, "MY_TOKEN": TOKEN, "PATH": "/bin", "TOKENIZERS_PARALLELISM": "x"}
    assert scrubbed_env(env) == {"PATH": "/bin", "TOKENIZERS_PARALLELISM": "x"}
    assert scrubbed_env(env, ["MY_TOKEN"]) == {"MY_TOKEN": TOKEN, "PATH": "/bin", "TOKENIZERS_PARALLELISM": "x"}
    register_secret("value-registered-elsewhere")
    assert "ODD_NAME" not in scrubbed_env({"ODD_NAME": "value-registered-elsewhere"})


def test_candidate_rationale_is_redacted(planted: None) -> None:
    cand = Candidate(config={"n": 1}, rationale=f"LLM: because {KEY}")
    assert KEY not in cand.rationale and KEY not in cand.model_dump_json()
    again = Candidate.model_validate(cand.model_dump())
    assert again.key == cand.key


def test_secret_values_are_cached_until_the_environment_or_the_registry_changes(
        planted: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``redact`` runs on every stored row: the environment is scanned again only when it changed."""
    from tunesmith.runners import secrets

    scans: list[int] = []
    scan = secrets._secret_values
    monkeypatch.setattr(secrets, "_secret_values", lambda env: (scans.append(1), scan(env))[1])
    redact("warm")
    before = len(scans)
    for _ in range(50):
        assert KEY not in redact(f"x {KEY}")
    assert len(scans) == before  # nothing changed: no scan
    monkeypatch.setenv("NEW_SECRET", "fresh-secret-value-1")
    assert redact("fresh-secret-value-1") == MASK and len(scans) == before + 1  # a new variable is seen
    monkeypatch.setenv("NEW_SECRET", "fresh-secret-value-2")
    assert redact("fresh-secret-value-2") == MASK  # a changed value too
    monkeypatch.setenv("PLAIN_NAME", "plain-value-to-hide")
    assert redact("plain-value-to-hide") == "plain-value-to-hide"
    register_secret_name("PLAIN_NAME")
    assert redact("plain-value-to-hide") == MASK  # registering a name drops the cached answer
    register_secret("registered-after-caching")
    assert redact("registered-after-caching") == MASK
    monkeypatch.delenv("NEW_SECRET")
    assert redact("fresh-secret-value-2") == "fresh-secret-value-2"  # a removed variable is no longer secret


def test_rows_read_back_from_the_store_are_not_redacted_again(
        planted: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.knowledge.study_store import StudyStore
    from tunesmith.runners import types

    store = StudyStore(tmp_path / "db.sqlite")
    store.open_study(parse_job({"name": "s", "target": "replay", "workload": {}}))
    trial = store.start_trial("s", Candidate(config={"n": 1}, rationale=f"LLM: because {KEY}"))
    calls: list[str] = []
    monkeypatch.setattr(types, "redact", lambda text: (calls.append(text), text)[1])
    assert [t.id for t in store.trials("s")] == [trial.id] and store.trial(trial.id).candidate.rationale == (
        f"LLM: because {MASK}")  # redacted once, on write
    assert calls == []
    Candidate(config={"n": 2}, rationale="new text")  # anything else built from text is still redacted
    assert calls == ["new text"]
    store.close()


PRINT_ENV = "import os; print({k: os.environ.get(k) for k in ('OPENAI_API_KEY', 'MY_TOKEN', 'EXPLICIT_TOKEN')})"


def test_workloads_get_no_secrets_unless_passed(planted: None, tmp_path: Path) -> None:
    spec = RunSpec(argv=[sys.executable, "-c", PRINT_ENV], cwd=tmp_path / "run", env={"EXPLICIT_TOKEN": "given-by-job"})
    res = LocalRunner().run(spec)
    assert res.returncode == 0 and KEY not in res.stdout_tail and TOKEN not in res.stdout_tail
    assert "'OPENAI_API_KEY': None" in res.stdout_tail and "given-by-job" in res.stdout_tail  # [runner] env passes
    runner = LocalRunner()
    job = parse_job({"name": "s", "target": "command", "runner": {"pass_env": ["MY_TOKEN"]}})
    runner.attach(job, tmp_path / "scratch")
    res = runner.run(spec)
    assert TOKEN in res.stdout_tail and KEY not in res.stdout_tail  # pass_env passes exactly what it names


WORKLOAD = r"""
import json, os, sys
print("ENV", dict(os.environ))
print("HAS_OPENAI=%s HAS_MY_TOKEN=%s" % ("OPENAI_API_KEY" in os.environ, "MY_TOKEN" in os.environ))
print("token on stderr:", os.environ.get("MY_TOKEN"), file=sys.stderr)
n = int(sys.argv[1])
json.dump({"seconds": 0.05 / n, "note": os.environ.get("MY_TOKEN")}, open(os.environ["TUNESMITH_RESULT"], "w"))
"""


def scripted_llm():
    """The real LLM client over a scripted chat model that echoes the key (and token) in every field."""
    from tunesmith.agents.llm import LLMClient, ScriptedBackend

    leak = f"{KEY} / {TOKEN}"
    proposals = [{"n": 4}, {"n": 2}]

    def reply(messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if "planning the next experiments" in prompt:
            cfg = proposals.pop(0) if proposals else {"n": 1}
            return json.dumps({"reasoning": f"reasoning {leak}", "candidates": [{"config": cfg, "rationale": leak}]})
        if "Explain in one or two sentences" in prompt:
            return json.dumps({"explanation": f"explained {leak}"})
        return json.dumps({"insight": f"lesson {leak}", "confidence": 0.9})

    return LLMClient(ScriptedBackend(reply), model="scripted", structured_mode="json_object", max_retries=2)


def test_a_study_stores_and_reports_no_secret(planted: None, tmp_path: Path) -> None:
    from tunesmith.agents.study import drive, open_session
    from tunesmith.knowledge.report import write_report

    (tmp_path / "wl.py").write_text(WORKLOAD)
    job = parse_job({
        "name": "leak", "target": "command",
        "workload": {"command": ["{python}", "wl.py", "{n}"], "allow_tmpfs": True, "drop_caches": False,
                     "params": {"n": {"kind": "choice", "values": [1, 2, 4], "default": 1}}},
        "budget": {"trials": 3}, "measure": {"repeats": 2}, "runner": {"pass_env": ["MY_TOKEN"]},
    }, base_dir=tmp_path)
    state = tmp_path / "state"
    setup = SimpleNamespace(client=scripted_llm(), mode="endpoint", description="endpoint: scripted")
    with open_session(job, state, llm_setup=setup) as session:
        outcome = drive(session)
        write_report(session.store, "leak", state / "reports")
    trials = outcome.trials
    assert any(t.candidate.rationale.startswith("LLM:") for t in trials), "the scripted planner was not used"
    tails = " ".join(t.measurement.stdout_tail for t in trials if t.measurement)
    assert "HAS_OPENAI=False HAS_MY_TOKEN=True" in tails and MASK in tails
    assert any(MASK in t.explanation for t in trials) or any(MASK in t.measurement.stderr_tail for t in trials)
    files = [p for p in state.rglob("*") if p.is_file()]
    assert {"tunesmith.db", "checkpoints.db"} <= {p.name for p in files}
    assert any(p.suffix == ".md" for p in files) and any(p.suffix == ".json" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in (KEY, TOKEN):
            assert secret.encode() not in data, f"{secret[:12]}... found in {path.relative_to(state)}"
