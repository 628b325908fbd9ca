"""``search_knowledge``: the lessons tunesmith has stored, ranked against a question.

The operation asks a ``KnowledgeSource`` and does not care how it retrieves. The knowledge layer's
``Retriever`` (``tunesmith.knowledge.retrieval``: Chroma, offline embeddings, manuals, rules and lessons
with citations) is the one a study passes in (``TuningSession.retriever()``) and the one used by default
where a knowledge store exists; without one, the fallback is ``ReflectionSource``: the study store's reflections, ranked by how many of the query's words each one
contains. The tool's schema and output are the same for both.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from pydantic import Field

from tunesmith.knowledge.retrieval import KnowledgeHit

from .base import StoreReader, ToolInput, ToolOutput

_WORD = re.compile(r"[a-z0-9_]+")
# Words too common in questions and lessons to say anything about relevance.
_STOP = frozenset("a an and are as at be by for from how i in is it of on or so than that the this to was "
                  "what when which why with does do should".split())


@runtime_checkable
class KnowledgeSource(Protocol):
    """Anything that can answer ``search``: filters hold exact-match keys such as ``domain`` and ``study``."""

    def search(self, query: str, k: int, filters: dict[str, str]) -> list[KnowledgeHit]: ...


def terms(text: str) -> set[str]:
    """Lower-case words of ``text`` without stop words."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


class ReflectionSource:
    """The study store's reflections, ranked by the share of the query's terms each lesson contains.

    Ties go to the more confident, then the newer lesson. ``domain`` matches the first part of the
    workload signature (``io``, ``kernel``, ``training``); ``study`` matches the study that wrote it.
    """

    def __init__(self, store: StoreReader) -> None:
        self.store = store

    def search(self, query: str, k: int, filters: dict[str, str]) -> list[KnowledgeHit]:
        wanted = terms(query)
        if not wanted:
            return []
        domain = filters.get("domain")
        prefix = f"{domain}/" if domain else None
        scored = []
        for order, r in enumerate(self.store.reflections(study=filters.get("study"), workload_prefix=prefix)):
            overlap = len(wanted & terms(f"{r.insight} {r.workload}")) / len(wanted)
            if overlap > 0:
                scored.append((overlap, r.confidence, order, r))
        scored.sort(key=lambda s: (s[0], s[1], s[2]), reverse=True)
        return [KnowledgeHit(text=r.insight, source=f"reflection:{r.study}", score=round(score, 4),
                             citation=f"study {r.study}, trials {r.evidence}",
                             metadata={"study": r.study, "workload": r.workload, "hardware": r.hardware,
                                       "evidence_trials": r.evidence, "effect": r.effect,
                                       "confidence": r.confidence, "author": r.author,
                                       "created_at": r.created_at})
                for score, _, _, r in scored[:k]]


class SearchKnowledgeInput(ToolInput):
    """A question in words, how many answers, and optional filters."""

    query: str = Field(min_length=1, max_length=2000, description="what to look for, in plain words")
    k: int = Field(5, ge=1, le=50, description="at most this many results")
    domain: str | None = Field(None, description="only this domain: io, kernel, training, replay")
    study: str | None = Field(None, description="only lessons written by this study")


class SearchKnowledgeOutput(ToolOutput):
    """The best matches first; empty when nothing stored matches."""

    hits: list[KnowledgeHit]
    source: str = Field(description="which knowledge source answered")


def search_knowledge(store: StoreReader, args: SearchKnowledgeInput,
                     knowledge: KnowledgeSource | None = None) -> SearchKnowledgeOutput:
    """Search ``knowledge``: the given source, else the knowledge store's ``Retriever`` where one exists, else
    the study store's reflections."""
    if knowledge is None:
        from tunesmith.knowledge.retrieval import open_retriever

        knowledge = open_retriever()  # the knowledge store where one exists (None costs a file check)
    source = knowledge if knowledge is not None else ReflectionSource(store)
    filters = {key: value for key, value in (("domain", args.domain), ("study", args.study)) if value}
    return SearchKnowledgeOutput(hits=source.search(args.query, args.k, filters)[: args.k],
                                 source=type(source).__name__)
