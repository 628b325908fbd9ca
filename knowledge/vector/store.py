"""The knowledge store: Chroma collections (manuals, profiles, reflections, kernels) under one folder.

The folder is ``--knowledge-dir``, else ``$TUNESMITH_KNOWLEDGE``, else ``knowledge/`` in the user's data
folder (platformdirs). The study store stays the source of truth for trials; this store indexes what is
retrieved by meaning. Each collection records the identity of the embedder that filled it and refuses
any other (two embedders' vectors never mix); ``embedder.json`` in the folder names the store's embedder
so later commands pick it without being told. Metadata keys used as filters: ``domain``, ``system``,
``version``, ``hardware`` (plus ``source``, ``kind``, ``section``).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.runners.errors import InfrastructureError, TunesmithError

from .embedders import Embedder, as_chroma, make_embedder

COLLECTIONS = ("manuals", "profiles", "reflections", "kernels")
FILTER_KEYS = ("domain", "system", "version", "hardware", "source", "kind", "section")
ENV_DIR, ENV_EMBEDDER = "TUNESMITH_KNOWLEDGE", "TUNESMITH_EMBEDDER"
DEFAULT_EMBEDDER = "minilm"


class KnowledgeError(TunesmithError):
    """The knowledge store cannot be used as asked (wrong embedder, unknown collection)."""

    exit_code = 2


def knowledge_dir(option: str | Path | None = None) -> Path:
    """Where the store lives: the option, else $TUNESMITH_KNOWLEDGE, else the user's data folder."""
    if option:
        return Path(option).expanduser()
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("tunesmith")) / "knowledge"


@dataclass
class Record:
    """One stored item: a stable id, its text and flat metadata (str, int, float or bool values)."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Match:
    """A query result: the record and its cosine similarity in [0, 1]."""

    record: Record
    score: float


class KnowledgeStore:
    """Chroma collections in one folder, all filled by one embedder."""

    def __init__(self, path: str | Path | None = None, embedder: Embedder | str | None = None) -> None:
        self.path = knowledge_dir(path)
        recorded = self._recorded_embedder()
        if embedder is None:
            embedder = recorded or os.environ.get(ENV_EMBEDDER) or DEFAULT_EMBEDDER
        self.embedder: Embedder = make_embedder(embedder) if isinstance(embedder, str) else embedder
        self._client: Any = None
        self._cols: dict[str, Any] = {}

    # -- the folder --------------------------------------------------------------------------------
    def _recorded_embedder(self) -> str | None:
        f = self.path / "embedder.json"
        try:
            return json.loads(f.read_text()).get("name") if f.exists() else None
        except (OSError, ValueError):
            return None

    @property
    def exists(self) -> bool:
        """Whether anything was ever stored here."""
        return (self.path / "chroma.sqlite3").exists()

    def client(self) -> Any:
        if self._client is None:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                import chromadb
                from chromadb.config import Settings

                self._client = chromadb.PersistentClient(path=str(self.path),
                                                         settings=Settings(anonymized_telemetry=False))
            except OSError as exc:
                raise InfrastructureError(f"knowledge store {self.path} cannot be opened ({exc.strerror or exc})",
                                          "pass a writable --knowledge-dir") from None
            f = self.path / "embedder.json"
            if not f.exists():
                f.write_text(json.dumps({"name": getattr(self.embedder, "kind", "endpoint"),
                                         "identity": self.embedder.identity}))
        return self._client

    def collection(self, name: str) -> Any:
        """The collection ``name``, created on first use; refused if another embedder filled it."""
        if name not in COLLECTIONS:
            raise KnowledgeError(f"collection {name!r} does not exist", f"use one of {', '.join(COLLECTIONS)}")
        if name not in self._cols:
            with warnings.catch_warnings():  # chroma tries to rebuild the stored function: ours is passed in
                warnings.simplefilter("ignore")
                col = self.client().get_or_create_collection(
                    name, embedding_function=as_chroma(self.embedder),
                    metadata={"embedder": self.embedder.identity, "hnsw:space": "cosine"})
            have = (col.metadata or {}).get("embedder")
            if have != self.embedder.identity:
                raise KnowledgeError(
                    f"collection {name!r} in {self.path} holds vectors of embedder {have}, not {self.embedder.identity}",
                    "use the same --embedder, or another --knowledge-dir")
            self._cols[name] = col
        return self._cols[name]

    # -- writing -----------------------------------------------------------------------------------
    def add(self, collection: str, records: list[Record], batch: int = 512) -> int:
        """Store ``records`` (an id already present is overwritten); returns how many."""
        col = self.collection(collection)
        for i in range(0, len(records), batch):
            part = records[i:i + batch]
            col.upsert(ids=[r.id for r in part], documents=[r.text for r in part],
                       metadatas=[_flat({"collection": collection, **r.metadata}) for r in part],
                       embeddings=self.embedder.embed([r.text for r in part]))
        return len(records)

    def update_metadata(self, collection: str, record_id: str, changes: dict[str, Any]) -> None:
        """Change some metadata of one record (a lesson's confidence)."""
        col = self.collection(collection)
        got = col.get(ids=[record_id], include=["metadatas"])
        if not got["ids"]:
            raise KnowledgeError(f"no record {record_id!r} in {collection}", "list the records first")
        col.update(ids=[record_id], metadatas=[_flat({**(got["metadatas"][0] or {}), **changes})])

    def delete(self, collection: str, where: dict[str, Any]) -> int:
        """Remove the records matching ``where``; returns how many."""
        col = self.collection(collection)
        ids = col.get(where=_where(where), include=[])["ids"]
        if ids:
            col.delete(ids=ids)
        return len(ids)

    # -- reading -----------------------------------------------------------------------------------
    def get(self, collection: str, where: dict[str, Any] | None = None, ids: list[str] | None = None) -> list[Record]:
        """Records matching ``where`` (exact metadata values) or with these ids."""
        got = self.collection(collection).get(where=_where(where or {}), ids=ids, include=["documents", "metadatas"])
        return [Record(i, d or "", m or {}) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=False)]

    def count(self, collection: str) -> int:
        return self.collection(collection).count()

    def query(self, collection: str, text: str, k: int = 5, where: dict[str, Any] | None = None) -> list[Match]:
        """The ``k`` records nearest in meaning to ``text`` among those matching ``where``."""
        col = self.collection(collection)
        n = col.count()
        if n == 0 or k < 1:
            return []
        res = col.query(query_embeddings=self.embedder.embed([text]), n_results=min(k, n),
                        where=_where(where or {}), include=["documents", "metadatas", "distances"])
        return [Match(Record(i, d or "", m or {}), round(max(0.0, 1.0 - float(dist)), 4))
                for i, d, m, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=False)]


def _flat(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata: scalars only (None dropped, lists as JSON)."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, (str, int, float, bool)) else json.dumps(v, default=str)
    return out


def _where(filters: dict[str, Any]) -> dict[str, Any] | None:
    """Chroma's where clause for exact matches on every key (``$and`` when several)."""
    items = [{k: v} for k, v in filters.items() if v is not None]
    if not items:
        return None
    return items[0] if len(items) == 1 else {"$and": items}
