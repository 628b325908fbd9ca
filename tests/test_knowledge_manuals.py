"""Ingestion (man, Markdown, HTML, PDF, text, help output) and rule-based parameter extraction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.knowledge.manuals.documents import help_document, read_document, troff_to_text
from tunesmith.knowledge.manuals.ingest import chunk_document, ingest, load_document
from tunesmith.knowledge.manuals.llm_extract import Extraction, extract_with_llm
from tunesmith.knowledge.manuals.params import ManualParam, extract_rules, verify
from tunesmith.knowledge.manuals.space import manual_params
from tunesmith.knowledge.vector.store import KnowledgeStore

DATA = Path(__file__).parent / "data" / "knowledge"


@pytest.fixture
def store(tmp_path):
    return KnowledgeStore(tmp_path / "k", "hashing")


def _juicefs():
    return help_document((DATA / "juicefs-mount-help.txt").read_text(), "juicefs-mount", "$ juicefs mount --help")


def test_formats_keep_sections_and_lines(tmp_path):
    md = tmp_path / "guide.md"
    md.write_text("# Guide\nintro\n\n## Hints\ncb_nodes = 4\n```\n# not a heading\n```\n")
    doc = read_document(md)
    assert [s.title for s in doc.sections] == ["Guide", "Guide > Hints"]
    assert doc.sections[1].lines[0] == (5, "cb_nodes = 4") and (7, "# not a heading") in doc.sections[1].lines
    html = tmp_path / "p.html"
    html.write_text("<html><head><title>x</title></head><body>\n<h1>Tuning</h1>\n<p>Set <b>stripe_count</b>\nwide.</p>\n"
                    "<h2>Table</h2><table><tr><td>name</td><td>default</td></tr></table></body></html>")
    doc = read_document(html)
    assert [s.title for s in doc.sections] == ["Tuning", "Table"]
    assert doc.sections[0].lines == [(3, "Set stripe_count wide.")]
    man = read_document(DATA / "mount.fuse3.8")
    assert doc and man.kind == "man" and "OPTIONS" in [s.title for s in man.sections]
    text = troff_to_text('.TH X 1\n.SH OPTIONS\n.TP\n.B max_read=N\nThe default is 4.\n')
    assert "OPTIONS" in text and "max_read=N" in text


def test_pdf_and_broken_files(tmp_path, store):
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(100, 100)
    (tmp_path / "blank.pdf").write_bytes(b"")
    with open(tmp_path / "empty.pdf", "wb") as f:
        w.write(f)
    (tmp_path / "notes.txt").write_text("TUNING\n  prefetch: read ahead blocks\n")
    rep = ingest(store, [tmp_path / "blank.pdf", tmp_path / "empty.pdf", tmp_path / "notes.txt", tmp_path / "missing.md"])
    assert rep.added == {"notes": 1}
    assert len(rep.errors) == 3 and all("; fix: " in e and "\n" not in e for e in rep.errors)
    assert any("blank.pdf: not a readable PDF" in e for e in rep.errors)
    assert any("empty.pdf: no text found" in e for e in rep.errors)


def test_chunks_are_exact_slices_and_reingest_is_a_noop(store, tmp_path):
    doc = _juicefs()
    chunks = chunk_document(doc)
    lines = doc.line_map()
    assert all(lines[n] == t for c in chunks for n, t in c.lines)
    assert {c.section for c in chunks} >= {"OPTIONS", "DATA CACHE", "META CACHE"}
    f = tmp_path / "juicefs-mount-help.txt"
    f.write_text((DATA / "juicefs-mount-help.txt").read_text())
    first = ingest(store, [f])
    assert first.added["juicefs-mount-help"] == len(chunks)
    again = ingest(store, [f])
    assert again.added == {} and again.unchanged == ["juicefs-mount-help"]
    f.write_text(f.read_text() + "\n   --new-flag value  a new option (default: 3)\n")
    third = ingest(store, [f])
    assert third.replaced == ["juicefs-mount-help"]
    back, records = load_document(store, "juicefs-mount-help")
    assert all(back.line_map()[n] == t for n, t in read_document(f).line_map().items() if t.strip())
    assert len(records) == store.count("manuals")


def _score(src: str, params: list[ManualParam]) -> tuple[float, float]:
    truth = {p["name"] for p in json.loads((DATA / "expected" / f"{src}.json").read_text())["params"]}
    got = {p.name for p in params}
    return len(got & truth) / len(got), len(got & truth) / len(truth)


def test_rules_against_hand_checked_lists():
    gl = help_document((DATA / "gluster-volume-set-help.txt").read_text(), "gluster", "$ gluster volume set help")
    fuse = read_document(DATA / "mount.fuse3.8")
    for src, doc, floor in (("juicefs-mount-help", _juicefs(), 1.0), ("gluster-volume-set-help", gl, 1.0),
                            ("mount.fuse3", fuse, 0.9)):
        params = extract_rules(doc)
        precision, recall = _score(src, params)
        assert precision == 1.0 and recall >= floor, (src, precision, recall)
        assert all(verify(p, doc) == [] for p in params)
    by = {p.name: p for p in extract_rules(_juicefs())}
    assert by["buffer-size"].default == "300M" and by["buffer-size"].type == "size"
    assert by["writeback"].type == "bool" and by["writeback"].apply == "juicefs mount --writeback"
    assert by["cache-eviction"].choices == ["none", "2-random", "lru"] and by["cache-eviction"].type == "choice"
    assert by["prefetch"].default == "1" and by["prefetch"].scope == "per-client"
    g = {p.name: p for p in extract_rules(gl)}["performance.write-behind-window-size"]
    assert g.default == "1MB" and g.needs_root and g.scope == "global" and g.apply.startswith("gluster volume set")
    io = {p.name: p for p in extract_rules(gl)}["performance.io-thread-count"]
    assert (io.type, io.default, io.low, io.high) == ("int", "16", 1, 64)  # "Minimum value is 1, maximum value is 64"
    f = {p.name: p for p in extract_rules(fuse)}
    assert f["blksize"].default == "512" and f["blkdev"].needs_root and f["entry_timeout"].default == "1.0"


def test_verify_rejects_what_the_citation_does_not_say():
    doc = _juicefs()
    line = next(n for n, t in doc.line_map().items() if "--prefetch" in t)
    good = ManualParam(name="prefetch", default="1", line=line, line_end=line)
    assert verify(good, doc) == []
    assert verify(good.model_copy(update={"default": "4"}), doc) == [f"default '4' does not appear in lines {line}-{line}"]
    assert "name 'prefetch-depth'" in verify(good.model_copy(update={"name": "prefetch-depth"}), doc)[0]
    assert "high 64" in verify(good.model_copy(update={"low": 1, "high": 64}), doc)[0]
    assert "not in" in verify(good.model_copy(update={"line": 9999}), doc)[0]


def test_llm_extraction_keeps_only_supported_params():
    doc = _juicefs()
    lines = doc.line_map()
    n = next(k for k, t in lines.items() if "--prefetch" in t)
    m = next(k for k, t in lines.items() if "--max-uploads" in t)
    asked = []

    def ask(messages, schema):
        asked.append(messages[-1]["content"])
        assert schema is Extraction
        return Extraction(params=[
            {"name": "prefetch", "type": "int", "default": "1", "line": n, "line_end": n},
            {"name": "max-uploads", "type": "int", "default": "20", "low": 1, "high": 100, "line": m, "line_end": m},
            {"name": "turbo-mode", "type": "bool", "line": n, "line_end": n}] if "--prefetch" in messages[-1]["content"] else [])

    accepted, rejected = extract_with_llm(doc, ask)
    assert [p.name for p in accepted] == ["prefetch"] and accepted[0].extractor == "llm"
    assert {p.name for p, _ in rejected} == {"max-uploads", "turbo-mode"}
    assert any(f"{n}| " in a for a in asked)


def test_manual_params_cite_chunks(store, tmp_path):
    f = tmp_path / "juicefs-mount-help.txt"
    f.write_text((DATA / "juicefs-mount-help.txt").read_text())
    ingest(store, [f])
    rep = manual_params(store, "juicefs-mount-help")
    ids = {r.id: r for r in store.get("manuals")}
    assert len(rep.params) == 71
    for p in rep.params:
        r = ids[p.chunk]
        assert r.metadata["line_start"] <= p.line <= r.metadata["line_end"] and p.name in r.text


def test_help_of_and_man_by_name(store):
    import shutil

    from tunesmith.knowledge.manuals.documents import ManualError, read_help

    if shutil.which("juicefs") is None or shutil.which("man") is None:
        pytest.skip("juicefs or man is not installed")
    doc = read_help("juicefs mount --help")
    assert doc.source == "juicefs-mount" and doc.origin == "$ juicefs mount --help"
    assert {p.name for p in extract_rules(doc)} >= {"buffer-size", "prefetch", "writeback"}
    with pytest.raises(ManualError, match="failed \\(exit 3\\): daemon down"):
        read_help("sh -c 'echo daemon down; exit 3'")
    with pytest.raises(ManualError, match="is not on PATH"):
        read_help("no-such-program-xyz --help")
    rep = ingest(store, man=["mount.fuse3", "no-such-page-xyz"])
    assert rep.added.get("mount.fuse3", 0) > 10 and rep.errors == [
        "no man page named 'no-such-page-xyz' is installed; fix: check `man -k NAME`, or ingest the file"]
