"""Ingestion: documents cut into chunks that keep their section title and line range, stored by content hash.

Re-ingesting an unchanged document is a no-op (its content hash is already stored); a changed one replaces
its old chunks; a file that cannot be read is one line in the report and the others go on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.knowledge.vector.store import KnowledgeStore, Record

from .documents import Document, ManualError, find_man, read_document, read_help

MAX_CHARS = 700  # a chunk is a few paragraphs: small enough that one option's text dominates it


@dataclass
class Chunk:
    """A piece of a document: its section title, its lines and where they are."""

    source: str
    index: int
    section: str
    lines: list[tuple[int, str]]

    @property
    def body(self) -> str:
        return "\n".join(t for _, t in self.lines)

    @property
    def line_start(self) -> int:
        return self.lines[0][0]

    @property
    def line_end(self) -> int:
        return self.lines[-1][0]


def chunk_document(doc: Document, max_chars: int = MAX_CHARS) -> list[Chunk]:
    """Runs of whole paragraphs (split at blank lines) up to ``max_chars`` within each section.

    A chunk is a contiguous slice of its section's lines (blank lines between its paragraphs included),
    so its line numbers can be put back exactly; a paragraph longer than twice the limit is cut by lines.
    """
    chunks: list[Chunk] = []
    for section in doc.sections:
        lines = section.lines
        starts = [i for i, (_, t) in enumerate(lines) if t.strip() and (i == 0 or not lines[i - 1][1].strip())]
        bounds = starts[1:] + [len(lines)]
        begin, size = None, 0
        for a, b in zip(starts, bounds, strict=True):
            para = sum(len(t) + 1 for _, t in lines[a:b])
            if begin is not None and size + para > max_chars:
                chunks.append(Chunk(doc.source, len(chunks), section.title, _trim(lines[begin:a])))
                begin, size = None, 0
            if begin is None:
                begin = a
            size += para
            while size > 2 * max_chars and b - begin > 1:  # one huge paragraph: cut it by lines
                cut, part = begin, 0
                while cut < b - 1 and part < max_chars:
                    part += len(lines[cut][1]) + 1
                    cut += 1
                chunks.append(Chunk(doc.source, len(chunks), section.title, _trim(lines[begin:cut])))
                begin, size = cut, sum(len(t) + 1 for _, t in lines[cut:b])
        if begin is not None and begin < len(lines):
            chunks.append(Chunk(doc.source, len(chunks), section.title, _trim(lines[begin:])))
    return [c for c in chunks if c.lines]


def _trim(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    while lines and not lines[-1][1].strip():
        lines = lines[:-1]
    return lines


def chunk_id(source: str, content_hash: str, index: int) -> str:
    return hashlib.sha256(f"{source}\n{content_hash}\n{index}".encode()).hexdigest()[:20]


@dataclass
class IngestReport:
    """What an ingest did: per source, added (chunks), unchanged or replaced; and one line per failure."""

    added: dict[str, int] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def store_document(store: KnowledgeStore, doc: Document, report: IngestReport, *, collection: str = "manuals",
                   meta: dict[str, Any] | None = None) -> None:
    """Store ``doc``'s chunks unless the same content is already there (then: unchanged)."""
    h = doc.content_hash
    old = store.get(collection, {"source": doc.source})
    if old and all(r.metadata.get("content_hash") == h for r in old):
        report.unchanged.append(doc.source)
        return
    if old:
        store.delete(collection, {"source": doc.source})
        report.replaced.append(doc.source)
    records = []
    for c in chunk_document(doc):
        records.append(Record(chunk_id(doc.source, h, c.index), f"{c.section}\n{c.body}", {
            **(meta or {}), "source": doc.source, "kind": doc.kind, "origin": doc.origin, "section": c.section,
            "chunk": c.index, "line_start": c.line_start, "line_end": c.line_end, "content_hash": h,
            "line_numbers": None if c.line_end - c.line_start + 1 == len(c.lines) else [n for n, _ in c.lines]}))
    report.added[doc.source] = store.add(collection, records)


def ingest(store: KnowledgeStore, paths: list[Path] = (), *, man: list[str] = (), help_of: list[str] = (),
           source: str | None = None, meta: dict[str, Any] | None = None) -> IngestReport:  # type: ignore[assignment]
    """Ingest files (folders: every file inside), installed man pages and help commands into ``manuals``."""
    report = IngestReport()
    todo: list[tuple[str, Any]] = []
    for p in paths:
        p = Path(p)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        todo += [("file", f) for f in files]
    todo += [("man", m) for m in man] + [("help", h) for h in help_of]
    for kind, what in todo:
        try:
            if kind == "file":
                doc = read_document(what, source if len(todo) == 1 else None)
            elif kind == "man":
                doc = read_document(find_man(what), source or what)
            else:
                doc = read_help(what, source if len(todo) == 1 else None)
            store_document(store, doc, report, meta=meta)
        except ManualError as exc:
            report.errors.append(exc.line())
    return report


def load_document(store: KnowledgeStore, source: str, collection: str = "manuals") -> tuple[Document, list[Any]]:
    """A stored source put back together from its chunks (sections and line numbers as read) and the records."""
    from .documents import Section

    records = sorted(store.get(collection, {"source": source}), key=lambda r: int(r.metadata.get("chunk", 0)))
    if not records:
        raise ManualError(f"no manual named {source!r} is ingested", "see `tune knowledge list`, or ingest it first")
    sections: list[Section] = []
    for r in records:
        title = str(r.metadata.get("section", ""))
        body = r.text.split("\n", 1)[1] if "\n" in r.text else ""
        texts = body.split("\n")
        numbers = r.metadata.get("line_numbers")
        start = int(r.metadata.get("line_start", 1))
        nums = json.loads(numbers) if numbers else range(start, start + len(texts))
        lines = list(zip(nums, texts, strict=False))
        if sections and sections[-1].title == title:
            sections[-1].lines += lines
        else:
            sections.append(Section(title, lines))
    m = records[0].metadata
    return Document(source, str(m.get("kind", "text")), str(m.get("origin", "")), sections), records
