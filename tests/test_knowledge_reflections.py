"""Lessons across studies, the typed retriever, the search tool over it, and the session's hooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.synthetic import SyntheticTarget
from tunesmith.agents.study import drive, open_session
from tunesmith.knowledge.reflections import (
    Lesson,
    ensure_rules,
    lesson_from_reflection,
    list_lessons,
    search_lessons,
)
from tunesmith.knowledge.retrieval import Retriever, open_retriever
from tunesmith.knowledge.vector.store import KnowledgeError, KnowledgeStore, Record
from tunesmith.runners.job import parse_job
from tunesmith.runners.types import Reflection
from tunesmith.tools.operations import call_tool
from tunesmith.tools.plugins import TARGETS

TARGETS.register("synthetic", SyntheticTarget)


def _reflection(insight: str, author: str = "template", effect: float | None = 0.3) -> Reflection:
    return Reflection(study="s1", workload="io/command", hardware="cpu [abc]", insight=insight, evidence=[1, 4],
                      effect=effect, confidence=0.6, author=author)


def test_rule_only_when_one_parameter_changed_and_tiny_models_start_low():
    one = lesson_from_reflection(_reflection("threads=4 (was 1) changed seconds by 30 %"), "offline")
    assert one.rule and one.params == {"threads": "4"} and one.domain == "io" and one.pattern == "command"
    two = lesson_from_reflection(_reflection("threads=4 (was 1), chunk=16 (was 1) changed seconds"), "offline")
    assert not two.rule and two.params == {}
    failure = lesson_from_reflection(_reflection("mode=c (was a) fails with runtime", effect=None), "offline")
    assert not failure.rule
    tiny = lesson_from_reflection(_reflection("Use 4 threads (evidence: threads=4 (was 1))", "llm"), "local: SmolLM2-135M")
    big = lesson_from_reflection(_reflection("Use 4 threads (evidence: threads=4 (was 1))", "llm"), "endpoint: gpt-4o")
    assert tiny.confidence == 0.2 and big.confidence == 0.6 and tiny.model.startswith("local")


def test_retriever_cites_and_filters(tmp_path):
    store = KnowledgeStore(tmp_path, "hashing")
    assert ensure_rules(store) > 0 and ensure_rules(store) == 0  # ingested once, then unchanged
    store.add("manuals", [Record("m1", "DATA CACHE\n--prefetch value  prefetch N blocks in parallel (default: 1)",
                                 {"source": "juicefs-mount", "section": "DATA CACHE", "line_start": 104, "line_end": 104,
                                  "system": "juicefs"})])
    r = Retriever(store)
    hits = r.search("prefetch blocks in parallel", 3, {})
    assert hits[0].citation == "juicefs-mount, DATA CACHE, lines 104-104 (chunk m1)"
    assert hits[0].text.startswith("--prefetch") and hits[0].source == "manuals:juicefs-mount"
    only = r.search("collective buffering aggregators", 5, {"kind": "rule", "collection": "manuals"})
    assert only and all(h.metadata["kind"] == "rule" for h in only)
    assert only[0].metadata["source"] == "rule:mpiio-collective-buffering"
    assert r.search("prefetch", 3, {"system": "lustre"}) == []
    with pytest.raises(KnowledgeError):
        r.search("x", 3, {"collection": "nope"})
    out = call_tool("search_knowledge", {"query": "prefetch blocks"}, store=None, knowledge=r)  # type: ignore[arg-type]
    assert '"source": "Retriever"' in out and "lines 104-104" in out


def test_open_retriever_only_where_a_store_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_KNOWLEDGE", str(tmp_path / "none"))
    assert open_retriever() is None and not (tmp_path / "none").exists()
    monkeypatch.setenv("TUNESMITH_KNOWLEDGE", "off")
    assert open_retriever() is None


def _job(name: str, trials: int):
    return parse_job({"name": name, "target": "synthetic", "budget": {"trials": trials}, "measure": {"repeats": 5},
                      "llm": {"mode": "off"}})


def test_studies_write_lessons_and_a_later_study_confirms_them(tmp_path: Path, monkeypatch):
    kdir = tmp_path / "knowledge"
    monkeypatch.setenv("TUNESMITH_KNOWLEDGE", str(kdir))
    store = KnowledgeStore(kdir, "hashing")
    ensure_rules(store)  # the store exists: studies now use it
    with open_session(_job("first", 8), tmp_path / "a") as session:
        drive(session)
        first = session.store.reflections(study="first")
    lessons = list_lessons(KnowledgeStore(kdir))
    assert first and len(lessons) == len(first)
    rules = [x for x in lessons if x.rule]
    assert rules and all(x.domain == "test" and x.evidence and x.model == "template" for x in lessons)
    before = {x.id: x.confidence for x in rules}
    with open_session(_job("second", 8), tmp_path / "b") as session:
        retrieved = session.lessons()
        assert any("study first" in line for line in retrieved)
        assert session.lessons() == retrieved and session.knowledge._lessons  # retrieved once, then kept
        drive(session)
    after = {x.id: x for x in list_lessons(KnowledgeStore(kdir))}
    moved = [after[i] for i in before if after[i].confirmations or after[i].contradictions]
    assert moved, "the second study re-measured the same single changes"
    for x in moved:
        assert (x.confidence > before[x.id]) == (x.confirmations > 0)
    hits = search_lessons(KnowledgeStore(kdir), "test/synthetic", "threads seconds", 3)
    assert hits and isinstance(Lesson.model_validate(hits[0].metadata), Lesson)


def test_a_store_of_another_embedder_never_fails_the_study(tmp_path, caplog):
    from tunesmith.knowledge.vector.embedders import HashingEmbedder

    KnowledgeStore(tmp_path, "hashing").add("reflections", [Record("x", "old lesson", {"domain": "test"})])
    r = Retriever(KnowledgeStore(tmp_path, HashingEmbedder(64)))

    class Store:
        def reflections(self, study):
            return [_reflection("threads=4 (was 1) changed seconds by 30 %")]

        def trials(self, study, include_interrupted=False):
            return []

    assert r.record_study(Store(), "s1", "io/command", "cpu", "offline") == {"indexed": 0, "confirmed": 0, "contradicted": 0}
    assert "not indexed" in caplog.text


def test_search_tool_uses_the_knowledge_store_where_one_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_KNOWLEDGE", str(tmp_path / "k"))
    monkeypatch.setenv("TUNESMITH_EMBEDDER", "hashing")

    class Empty:
        def reflections(self, study=None, workload_prefix=None):
            return []

    assert '"source": "ReflectionSource"' in call_tool("search_knowledge", {"query": "stripe"}, Empty())  # type: ignore[arg-type]
    ensure_rules(KnowledgeStore(tmp_path / "k", "hashing"))
    out = call_tool("search_knowledge", {"query": "stripe count for a shared file"}, Empty())  # type: ignore[arg-type]
    assert '"source": "Retriever"' in out and "rule:lustre-striping" in out
