"""One typed retrieval interface over everything tunesmith knows: manuals, rules, profiles and lessons.

``Retriever.search(query, k, filters)`` answers with ``KnowledgeHit`` items that carry their citation
(source, section, line range, chunk id). It is the ``KnowledgeSource`` the ``search_knowledge`` tool asks,
and what a study hands to its planner, judge, coder and chat. ``lessons_for`` is retrieved once per study
and kept (it is never called per trial). ``open_retriever`` gives None when no knowledge store exists, so
a study without one pays nothing.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import BaseModel, Field

from tunesmith.knowledge.vector.store import COLLECTIONS, ENV_DIR, FILTER_KEYS, KnowledgeStore, Match


class KnowledgeHit(BaseModel):
    """One retrieved item: its text, where it came from, how well it matched, and what backs it."""

    text: str
    source: str = Field(description="where the text lives, e.g. manuals:juicefs-mount or reflection:<study>")
    score: float = Field(description="relevance in [0, 1], higher is closer")
    citation: str = Field("", description="source, section and line range (or the evidence trials of a lesson)")
    metadata: dict[str, Any] = Field(default_factory=dict)


_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and are as at be by for from how i in is it of on or so than that the this to was what when "
                  "which why with does do should can".split())
# Weight of word overlap against similarity of meaning, chosen on the benchmark's questions
# (benchmarks/knowledge.py reports both the blend and vectors alone).
LEXICAL_WEIGHT = 0.4


def _stems(text: str) -> set[str]:
    """Lower-case words without stop words, cut to five letters (a crude stem: buffer/buffering)."""
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP}


def _citation(collection: str, m: Match) -> str:
    md = m.record.metadata
    if collection == "reflections":
        return f"lesson {m.record.id} from study {md.get('study', '?')}, evidence trials {md.get('evidence', '[]')}"
    if collection == "profiles":
        return f"{md.get('kind')} profile of study {md.get('study')} trial #{md.get('trial')}, bottleneck {md.get('bottleneck')} ({m.record.id})"
    lines = f"lines {md.get('line_start')}-{md.get('line_end')}" if md.get("line_start") is not None else ""
    section = f", {md['section']}" if md.get("section") not in (None, "", "(top)") else ""
    return f"{md.get('source', '?')}{section}, {lines} (chunk {m.record.id})".replace(", ,", ",")


class Retriever:
    """Searches the knowledge store's collections by meaning; filters are exact metadata matches.

    ``filters`` keys: ``domain``, ``system``, ``version``, ``hardware``, ``source``, ``kind``, ``section``
    (and ``study`` for lessons) and ``collection`` to search one collection only. A lesson's score is its
    similarity weighted by its confidence, so a weak lesson ranks below a strong one of equal text match.
    """

    def __init__(self, store: KnowledgeStore, collections: tuple[str, ...] = ("manuals", "reflections"),
                 lexical: float = LEXICAL_WEIGHT) -> None:
        self.store = store
        self.collections = collections
        self.lexical = lexical
        self._lessons: dict[tuple[str, str, int], list[KnowledgeHit]] = {}

    def search(self, query: str, k: int, filters: dict[str, str]) -> list[KnowledgeHit]:
        """The ``k`` best hits over the chosen collections, best first."""
        if not query.strip() or k < 1:
            return []
        cols = (filters["collection"],) if filters.get("collection") else self.collections
        where = {key: v for key, v in filters.items() if key in FILTER_KEYS or key == "study"}
        hits: list[KnowledgeHit] = []
        for col in cols:
            if col not in COLLECTIONS:
                self.store.collection(col)  # an unknown name is a one-line KnowledgeError
            if not self.store.exists:
                continue
            pool = self.store.query(col, query, max(4 * k, 20) if self.lexical else k, where)
            for m in sorted(pool, key=lambda m: self._blend(query, m), reverse=True)[:k]:
                md = dict(m.record.metadata)
                score = round(self._blend(query, m), 4)
                if col == "reflections":
                    score = round(score * (0.5 + 0.5 * float(md.get("confidence", 0.5))), 4)
                text = m.record.text.split("\n", 1)[1] if col == "manuals" and "\n" in m.record.text else m.record.text
                hits.append(KnowledgeHit(text=text, source=f"{col}:{md.get('source') or md.get('study', '')}",
                                         score=score, citation=_citation(col, m), metadata={**md, "id": m.record.id}))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:k]

    def _blend(self, query: str, m: Match) -> float:
        """Similarity of meaning blended with the share of the query's word stems the text contains."""
        if not self.lexical:
            return m.score
        wanted = _stems(query)
        overlap = len(wanted & _stems(m.record.text)) / len(wanted) if wanted else 0.0
        return (1 - self.lexical) * m.score + self.lexical * overlap

    def lessons_for(self, signature: str, context: str, k: int = 5) -> list[KnowledgeHit]:
        """Lessons and rules for a workload (``domain/...`` signature) and its description, kept per study."""
        key = (signature, context, k)
        if key not in self._lessons:
            from tunesmith.knowledge.reflections import ensure_rules, search_lessons

            ensure_rules(self.store)
            domain = signature.split("/", 1)[0]
            found = search_lessons(self.store, signature, f"{signature} {context}", k)
            rules = self.search(f"{signature} {context}", k, {"collection": "manuals", "kind": "rule", "domain": domain})
            self._lessons[key] = sorted(found + rules, key=lambda h: h.score, reverse=True)[:k]
        return self._lessons[key]

    def record_study(self, study_store: Any, study: str, signature: str, hardware: str, model: str,
                     params: dict[str, dict[str, str]] | None = None) -> dict[str, int]:
        """After a study: index its lessons and move the confidence of earlier lessons it tested.

        A knowledge store that cannot be written (another embedder, a full disk) never fails the study:
        the problem is logged and the counts are zero.
        """
        import logging
        import sqlite3

        from chromadb.errors import ChromaError

        from tunesmith.knowledge.reflections import record_study
        from tunesmith.runners.errors import TunesmithError

        try:
            return record_study(self.store, study_store, study, signature=signature, hardware=hardware, model=model,
                                params=params)
        except (TunesmithError, OSError, sqlite3.Error, ChromaError) as exc:
            logging.getLogger(__name__).warning("lessons of %s not indexed in %s: %s", study, self.store.path, exc)
            return {"indexed": 0, "confirmed": 0, "contradicted": 0}


def open_retriever(path: str | None = None) -> Retriever | None:
    """A retriever over the knowledge store, or None when there is none (or ``TUNESMITH_KNOWLEDGE=off``)."""
    if (path or os.environ.get(ENV_DIR, "")).lower() == "off":
        return None
    store = KnowledgeStore(path)
    return Retriever(store) if store.exists else None
