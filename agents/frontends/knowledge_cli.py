"""`tune knowledge ...`: ingest manuals, search them, list and forget them, extract parameters, show lessons.

The store lives in the user's data folder unless ``--knowledge-dir`` (or ``$TUNESMITH_KNOWLEDGE``) names
another; ``--embedder`` picks hashing, minilm or endpoint the first time (the store remembers it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

KDir = Annotated[str | None, typer.Option("--knowledge-dir", help="the knowledge store folder (default: the user's data folder)")]
Emb = Annotated[str | None, typer.Option("--embedder", help="hashing | minilm | endpoint (default: what the store was built with, else minilm)")]


def _store(kdir: str | None, embedder: str | None):  # noqa: ANN202
    from tunesmith.knowledge.vector.store import KnowledgeStore

    if embedder == "endpoint":
        import os

        from tunesmith.knowledge.vector.embedders import make_embedder

        emb = make_embedder("endpoint", base_url=os.environ.get("TUNESMITH_LLM_BASE_URL"),
                            model=os.environ.get("TUNESMITH_EMBED_MODEL"))
        return KnowledgeStore(kdir, emb)
    return KnowledgeStore(kdir, embedder)


def _run(fn):  # noqa: ANN001, ANN202
    """Call ``fn`` with the CLI's error conventions (one line, exit 2 or 4; a traceback only in crash.log)."""
    from tunesmith.agents.frontends.cli import DEFAULT_STATE, _fail, _internal, _quiet_exit
    from tunesmith.runners.errors import TunesmithError

    try:
        return fn()
    except typer.Exit:
        raise
    except TunesmithError as exc:
        raise _fail(exc) from None
    except BrokenPipeError:
        raise _quiet_exit() from None
    except Exception as exc:  # noqa: BLE001
        raise _internal(exc, DEFAULT_STATE) from None


def _say(text: str) -> None:
    from tunesmith.agents.frontends.cli import _say as say

    say(text)


def register(app: typer.Typer) -> None:
    """Add `tune knowledge ingest|search|list|forget|params|reflections`."""
    from tunesmith.agents.frontends.cli import command_group

    group = command_group("knowledge", "Manuals, rules and lessons: ingest, search, extract parameters.")

    @group.command("ingest")
    def ingest(
        paths: Annotated[list[Path] | None, typer.Argument(help="files or folders: man pages, Markdown, HTML, PDF, text")] = None,
        man: Annotated[list[str] | None, typer.Option("--man", help="an installed man page by name")] = None,
        help_of: Annotated[list[str] | None, typer.Option("--help-of", help='a help command, e.g. "juicefs mount --help"')] = None,
        source: Annotated[str | None, typer.Option("--source", help="name the source (one input only)")] = None,
        domain: Annotated[str | None, typer.Option(help="metadata: io, kernel, training")] = None,
        system: Annotated[str | None, typer.Option(help="metadata: the software, e.g. juicefs")] = None,
        version: Annotated[str | None, typer.Option(help="metadata: its version")] = None,
        knowledge_dir: KDir = None, embedder: Emb = None,
    ) -> None:
        """Ingest manuals; unchanged content is skipped, a broken file is one line and the rest goes on."""
        from tunesmith.agents.frontends.cli import err
        from tunesmith.knowledge.manuals.ingest import ingest as do_ingest
        from tunesmith.runners.errors import TunesmithError

        if not (paths or man or help_of):
            raise _run(lambda: (_ for _ in ()).throw(TunesmithError("nothing to ingest", "give PATH..., --man NAME or --help-of CMD")))

        def go():  # noqa: ANN202
            store = _store(knowledge_dir, embedder)
            meta = {k: v for k, v in (("domain", domain), ("system", system), ("version", version)) if v}
            return store, do_ingest(store, list(paths or []), man=list(man or []), help_of=list(help_of or []),
                                    source=source, meta=meta)

        store, rep = _run(go)
        for src, n in rep.added.items():
            _say(f"ingested {src}: {n} chunks" + (" (replaced the older version)" if src in rep.replaced else ""))
        for src in rep.unchanged:
            _say(f"unchanged {src}: already ingested")
        for line in rep.errors:
            err.print(f"error: {line}", markup=False, highlight=False)
        _say(f"store: {store.path} ({store.embedder.identity})")
        if rep.errors:
            raise typer.Exit(2)

    @group.command("search")
    def search(
        query: Annotated[str, typer.Argument(help="what to look for")],
        k: Annotated[int, typer.Option("--k", min=1, max=100, help="how many results")] = 5,
        collection: Annotated[str | None, typer.Option(help="manuals | profiles | reflections | kernels")] = None,
        domain: Annotated[str | None, typer.Option(help="only this domain")] = None,
        system: Annotated[str | None, typer.Option(help="only this system")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        knowledge_dir: KDir = None, embedder: Emb = None,
    ) -> None:
        """Search the store by meaning; every hit names its source, section and lines."""
        from tunesmith.knowledge.reflections import ensure_rules
        from tunesmith.knowledge.retrieval import Retriever
        from tunesmith.runners.secrets import redact

        def go():  # noqa: ANN202
            store = _store(knowledge_dir, embedder)
            ensure_rules(store)
            filters = {k2: v for k2, v in (("collection", collection), ("domain", domain), ("system", system)) if v}
            return Retriever(store).search(query, k, filters)

        hits = _run(go)
        if as_json:
            _say(redact(json.dumps([h.model_dump() for h in hits], indent=1)))
            return
        if not hits:
            _say("no match")
        for i, h in enumerate(hits, 1):
            _say(f"{i}. [{h.score:.3f}] {h.citation}")
            _say("   " + " ".join(redact(h.text).split())[:300])

    @group.command("list")
    def list_sources(knowledge_dir: KDir = None, embedder: Emb = None) -> None:
        """The ingested sources, per collection, with their chunk counts."""
        from collections import Counter

        from tunesmith.knowledge.vector.store import COLLECTIONS

        def go():  # noqa: ANN202
            store = _store(knowledge_dir, embedder)
            if not store.exists:
                return store, []
            rows = []
            for col in COLLECTIONS:
                counts = Counter((str(r.metadata.get("source")), str(r.metadata.get("kind", ""))) for r in store.get(col))
                rows += [(col, src, kind, n) for (src, kind), n in sorted(counts.items())]
            return store, rows

        store, rows = _run(go)
        if not rows:
            _say(f"the knowledge store {store.path} is empty; fix: `tune knowledge ingest PATH`")
            return
        for col, src, kind, n in rows:
            _say(f"{col:12} {src:40} {kind:9} {n} chunks")

    @group.command("forget")
    def forget(source: Annotated[str, typer.Argument(help="a source name from `tune knowledge list`")],
               knowledge_dir: KDir = None, embedder: Emb = None) -> None:
        """Remove one source from every collection."""
        from tunesmith.knowledge.vector.store import COLLECTIONS, KnowledgeError

        def go():  # noqa: ANN202
            store = _store(knowledge_dir, embedder)
            n = sum(store.delete(c, {"source": source}) for c in COLLECTIONS) if store.exists else 0
            if n == 0:
                raise KnowledgeError(f"no source named {source!r} is stored", "see `tune knowledge list`")
            return n

        _say(f"forgot {source}: {_run(go)} chunks removed")

    @group.command("params")
    def params(
        source: Annotated[str, typer.Argument(help="an ingested manual (see `tune knowledge list`)")],
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        llm: Annotated[str, typer.Option(help="off (rules only) | auto | endpoint | local: add verified LLM extraction")] = "off",
        knowledge_dir: KDir = None, embedder: Emb = None,
    ) -> None:
        """The tunable parameters a manual documents, each with its citation (chunk and lines)."""
        from tunesmith.agents.frontends.cli import err
        from tunesmith.knowledge.manuals.space import manual_params

        def go():  # noqa: ANN202
            store = _store(knowledge_dir, embedder)
            if llm == "off":
                return manual_params(store, source)
            from tunesmith.agents.llm.config import resolve_llm

            with resolve_llm(None, llm) as setup:
                if setup.client is None:
                    return manual_params(store, source)
                return manual_params(store, source, ask=lambda msgs, schema: setup.client.structured(
                    msgs, schema, purpose="manual-params", max_tokens=2048))

        rep = _run(go)
        if as_json:
            _say(json.dumps({"source": rep.source, "params": [p.model_dump() for p in rep.params],
                             "rejected": [{"param": p.model_dump(), "why": why} for p, why in rep.rejected]}, indent=1))
            return
        for p in rep.params:
            rng = f"{p.low:g}..{p.high:g}" if p.low is not None and p.high is not None else "|".join(p.choices)
            _say(f"{p.name:32} {p.type:8} default={p.default!s:14} {rng:16} {p.scope:11} "
                 f"{'root ' if p.needs_root else ''}[{p.source} line {p.line}, chunk {p.chunk}] {p.apply}")
        _say(f"{len(rep.params)} parameters from {rep.source}")
        for p, why in rep.rejected:
            err.print(f"rejected {p.name}: {'; '.join(why)}", markup=False, highlight=False)

    @group.command("reflections")
    def reflections(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
                    knowledge_dir: KDir = None, embedder: Emb = None) -> None:
        """The stored lessons with their signature, evidence, author model and confidence."""
        from tunesmith.knowledge.reflections import list_lessons

        lessons = _run(lambda: list_lessons(_store(knowledge_dir, embedder)))
        if as_json:
            _say(json.dumps([x.model_dump() for x in lessons], indent=1))
            return
        if not lessons:
            _say("no lessons stored yet (a study writes them when it finishes)")
        for x in lessons:
            kind = f"rule on {', '.join(x.params)}" if x.rule else "lesson"
            _say(f"[{x.confidence:.2f}] {x.domain}/{x.pattern} {kind} ({x.model}; +{x.confirmations}/-{x.contradictions}): "
                 f"{x.insight}")
            _say(f"       evidence: study {x.study}, trials {x.evidence}, effect {x.effect}, hardware {x.hardware}")
