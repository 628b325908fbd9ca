"""Knowledge benchmark: parameter extraction, retrieval quality per embedder, and scale.

1. **Extraction**: rule-based parameters from four real manuals on this machine (juicefs mount --help,
   gluster volume set help, mount.fuse3(8), and dd(1), which the extractors were not written against)
   against hand-checked lists (tests/data/knowledge/expected/): precision, recall, defaults right, and
   how many extracted entries their own citation fails to support (must be 0).
2. **Retrieval**: the hand-written questions of tests/data/knowledge/questions.json over those manuals
   plus the curated rules; recall@5 and MRR for each embedder (a hit is relevant when it comes from the
   expected source and contains the expected option).
3. **Scale**: real man pages from /usr/share/man rendered into chunks until ``--chunks`` (10,000), then
   ingest time (embedding + Chroma) and the median query time, for each embedder.

Retrieval is scored twice: vectors alone, and the Retriever's default blend with word overlap (its weight
was chosen on these same questions: there is no held-out set, so read the blend's numbers as tuned).

    python benchmarks/knowledge.py                 # everything, writes benchmarks/results/knowledge.json
    python benchmarks/knowledge.py --chunks 2000 --embedders hashing
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data" / "knowledge"


def manuals():  # noqa: ANN201
    from tunesmith.knowledge.manuals.documents import find_man, help_document, read_document

    return {
        "juicefs-mount-help": help_document((DATA / "juicefs-mount-help.txt").read_text(), "juicefs-mount-help",
                                            "$ juicefs mount --help"),
        "gluster-volume-set-help": help_document((DATA / "gluster-volume-set-help.txt").read_text(),
                                                 "gluster-volume-set-help", "$ gluster volume set help"),
        "mount.fuse3": read_document(DATA / "mount.fuse3.8"),
        "dd": read_document(find_man("dd"), "dd"),
    }


def extraction(docs) -> dict:  # noqa: ANN001
    from tunesmith.knowledge.manuals.params import extract_rules, verify

    out = {}
    for src, doc in docs.items():
        truth = {p["name"]: p["default"] for p in json.loads((DATA / "expected" / f"{src}.json").read_text())["params"]}
        t0 = time.perf_counter()
        got = {p.name: p for p in extract_rules(doc)}
        dt = time.perf_counter() - t0
        tp = set(got) & set(truth)
        out[src] = {"extracted": len(got), "expected": len(truth), "correct": len(tp),
                    "precision": round(len(tp) / max(1, len(got)), 3), "recall": round(len(tp) / len(truth), 3),
                    "defaults_right": sum((got[n].default or None) == (truth[n] or None) for n in tp),
                    "unsupported_by_citation": sum(1 for p in got.values() if verify(p, doc)),
                    "missed": sorted(set(truth) - set(got)), "wrong": sorted(set(got) - set(truth)),
                    "seconds": round(dt, 4)}
    return out


def retrieval(docs, embedder: str) -> dict:  # noqa: ANN001
    from tunesmith.knowledge.manuals.ingest import IngestReport, store_document
    from tunesmith.knowledge.reflections import ensure_rules
    from tunesmith.knowledge.retrieval import LEXICAL_WEIGHT, Retriever
    from tunesmith.knowledge.vector.store import KnowledgeStore

    questions = json.loads((DATA / "questions.json").read_text())["questions"]
    with tempfile.TemporaryDirectory() as d:
        store = KnowledgeStore(d, embedder)
        t0 = time.perf_counter()
        for doc in docs.values():
            store_document(store, doc, IngestReport())
        ensure_rules(store)
        ingest_s = time.perf_counter() - t0
        out = {"questions": len(questions), "chunks": store.count("manuals"), "ingest_s": round(ingest_s, 2)}
        for mode, weight in (("vector", 0.0), ("blend", LEXICAL_WEIGHT)):
            r = Retriever(store, lexical=weight)
            ranks, times = [], []
            for q in questions:
                t1 = time.perf_counter()
                hits = r.search(q["q"], 5, {"collection": "manuals"})
                times.append(time.perf_counter() - t1)
                ranks.append(next((i for i, h in enumerate(hits, 1)
                                   if h.metadata.get("source") == q["source"] and q["expect"] in h.text), None))
            out[mode] = {"lexical_weight": weight, "recall_at_5": round(sum(x is not None for x in ranks) / len(ranks), 3),
                         "mrr": round(sum(1 / x for x in ranks if x) / len(ranks), 3),
                         "median_query_ms": round(1000 * statistics.median(times), 1),
                         "misses": [q["q"] for q, x in zip(questions, ranks, strict=True) if x is None]}
    return out


def llm_extraction(docs, mode: str, names: list[str]) -> dict:  # noqa: ANN001
    """LLM extraction (through the agents' client) on some manuals: proposed, accepted, rejected, and how many
    accepted names are in the hand-checked list."""
    from tunesmith.agents.llm.config import resolve_llm
    from tunesmith.knowledge.manuals.llm_extract import extract_with_llm

    out = {}
    with resolve_llm(None, mode) as setup:
        if setup.client is None:
            return {"skipped": f"no LLM for mode {mode}"}
        for src in names:
            truth = {p["name"] for p in json.loads((DATA / "expected" / f"{src}.json").read_text())["params"]}
            t0 = time.perf_counter()
            accepted, rejected = extract_with_llm(docs[src], lambda m, schema: setup.client.structured(
                m, schema, purpose="manual-params", max_tokens=1024))
            out[src] = {"model": setup.description, "proposed": len(accepted) + len(rejected), "accepted": len(accepted),
                        "rejected": len(rejected), "accepted_in_truth": sum(p.name in truth for p in accepted),
                        "rejected_examples": [f"{p.name}: {why[0]}" for p, why in rejected[:5]],
                        "seconds": round(time.perf_counter() - t0, 1)}
    return out


def man_corpus(n_chunks: int) -> tuple[list, float]:
    """Real man pages (man1 then man8, in name order) rendered and chunked until ``n_chunks``."""
    from tunesmith.knowledge.manuals.documents import ManualError, read_document
    from tunesmith.knowledge.manuals.ingest import chunk_document

    t0 = time.perf_counter()
    docs, total = [], 0
    for folder in ("/usr/share/man/man1", "/usr/share/man/man8", "/usr/share/man/man5", "/usr/share/man/man3"):
        for f in sorted(Path(folder).glob("*.gz")) if Path(folder).exists() else []:
            try:
                doc = read_document(f)
            except ManualError:
                continue
            chunks = chunk_document(doc)
            docs.append(doc)
            total += len(chunks)
            if total >= n_chunks:
                return docs, time.perf_counter() - t0
    return docs, time.perf_counter() - t0


def scale(docs, embedder: str, n_chunks: int, queries: list[str]) -> dict:  # noqa: ANN001
    from tunesmith.knowledge.manuals.ingest import chunk_document, chunk_id
    from tunesmith.knowledge.vector.store import KnowledgeStore, Record

    records = []
    for doc in docs:
        h = doc.content_hash
        records += [Record(chunk_id(doc.source, h, c.index), f"{c.section}\n{c.body}",
                           {"source": doc.source, "section": c.section, "line_start": c.line_start,
                            "line_end": c.line_end}) for c in chunk_document(doc)]
    records = records[:n_chunks]
    with tempfile.TemporaryDirectory() as d:
        store = KnowledgeStore(d, embedder)
        t0 = time.perf_counter()
        store.add("manuals", records)
        ingest_s = time.perf_counter() - t0
        times = []
        for q in queries:
            t1 = time.perf_counter()
            store.query("manuals", q, 5)
            times.append(time.perf_counter() - t1)
        return {"chunks": store.count("manuals"), "pages": len(docs), "ingest_s": round(ingest_s, 1),
                "chunks_per_s": round(len(records) / ingest_s, 1),
                "median_query_ms": round(1000 * statistics.median(times), 1),
                "p90_query_ms": round(1000 * sorted(times)[int(0.9 * len(times))], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--embedders", default="hashing,minilm")
    ap.add_argument("--out", default=str(HERE / "results" / "knowledge.json"))
    ap.add_argument("--llm", default="off", help="off | local | endpoint: also run verified LLM extraction")
    ap.add_argument("--llm-manuals", default="dd,mount.fuse3,juicefs-mount-help")
    args = ap.parse_args()
    embedders = args.embedders.split(",")
    docs = manuals()
    earlier = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    # embedders not run now keep their numbers from the last run
    result: dict = {"extraction": extraction(docs), "retrieval": dict(earlier.get("retrieval", {})),
                    "scale": dict(earlier.get("scale", {}))}
    print("extraction (rules)      extracted expected precision recall defaults unsupported")
    for src, r in result["extraction"].items():
        print(f"  {src:24} {r['extracted']:9} {r['expected']:8} {r['precision']:9.3f} {r['recall']:6.3f} "
              f"{r['defaults_right']:4}/{r['correct']:<4} {r['unsupported_by_citation']:3}")
    if args.llm != "off":
        result["llm_extraction"] = llm_extraction(docs, args.llm, args.llm_manuals.split(","))
        for src, r in result["llm_extraction"].items():
            print(f"llm extraction {src}: {r}")
    for emb in embedders:
        r = result["retrieval"][emb] = retrieval(docs, emb)
        for mode in ("vector", "blend"):
            m = r[mode]
            print(f"retrieval {emb:8} {mode:6} {r['questions']} questions over {r['chunks']} chunks: recall@5 "
                  f"{m['recall_at_5']:.3f}  MRR {m['mrr']:.3f}  median query {m['median_query_ms']} ms")
    if args.chunks:
        corpus, render_s = man_corpus(args.chunks)
        result["scale"]["render_s"] = round(render_s, 1)
        queries = [q["q"] for q in json.loads((DATA / "questions.json").read_text())["questions"]]
        for emb in embedders:
            r = result["scale"][emb] = scale(corpus, emb, args.chunks, queries)
            print(f"scale {emb:8} {r['chunks']} chunks ({r['pages']} man pages): ingest {r['ingest_s']} s "
                  f"({r['chunks_per_s']}/s), query median {r['median_query_ms']} ms, p90 {r['p90_query_ms']} ms")
    if args.llm == "off" and earlier.get("llm_extraction"):  # the last run's LLM extraction numbers
        result["llm_extraction"] = earlier["llm_extraction"]
    result["machine"] = {"python": sys.version.split()[0], "note": "2-core shared development machine, no GPU"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
