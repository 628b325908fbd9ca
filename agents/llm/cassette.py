"""Record real LLM exchanges once, replay them in tests without an endpoint."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from tunesmith.runners.errors import InfrastructureError

from .backends import ChatBackend, ChatReply, Messages, StreamEnd
from .redact import one_line, redact

FORMAT_VERSION = 1


def exchange_key(messages: Messages, response_format: dict[str, Any] | None) -> str:
    """A stable hash of what was asked: the messages (role and content) and the response format."""
    asked = {
        "messages": [{"role": m.get("role"), "content": m.get("content")} for m in messages],
        "response_format": response_format,
    }
    blob = json.dumps(asked, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class CassetteBackend(ChatBackend):
    """Replays recorded exchanges from a JSON file keyed by a hash of the request.

    ``mode="replay"`` answers only what was recorded and raises a clear ``InfrastructureError`` for
    anything else. ``mode="record"`` forwards every request to ``inner`` (a real backend), stores the
    reply and rewrites the file after each exchange; already recorded requests are replayed.
    Stored messages are redacted; the keys are computed from the originals. ``stream`` replays a streamed
    exchange in the chunks it arrived in (recorded under the response format ``{"stream": true}``, so a
    streamed and a whole answer to the same messages are kept apart).
    """

    name = "cassette"

    def __init__(
        self,
        path: str | Path,
        *,
        mode: Literal["replay", "record"] = "replay",
        inner: ChatBackend | None = None,
    ) -> None:
        if mode not in ("replay", "record"):
            raise InfrastructureError(f"unknown cassette mode {mode!r}", "use 'replay' or 'record'")
        if mode == "record" and inner is None:
            raise InfrastructureError(
                "a recording cassette needs a real backend", "pass inner=OpenAIBackend(...)"
            )
        self.path = Path(path)
        self.mode = mode
        self.inner = inner
        self._lock = threading.Lock()
        self._exchanges: dict[str, dict[str, Any]] = self._load()
        self.hits = 0

    def describe(self) -> str:
        return f"cassette {self.path.name} ({self.mode}, {len(self._exchanges)} exchanges)"

    def __len__(self) -> int:
        return len(self._exchanges)

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            if self.mode == "replay":
                raise InfrastructureError(
                    f"LLM cassette {str(self.path)!r} does not exist", "record it first with mode='record'"
                )
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            exchanges = data["exchanges"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InfrastructureError(
                f"LLM cassette {self.path.name} is unreadable ({one_line(exc, 100)})",
                "delete it and record again",
            ) from None
        return dict(exchanges)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": FORMAT_VERSION, "exchanges": self._exchanges}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True, ensure_ascii=False)
        os.replace(tmp, self.path)

    def chat(
        self,
        messages: Messages,
        *,
        response_format: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> ChatReply:
        key = exchange_key(messages, response_format)
        with self._lock:
            hit = self._exchanges.get(key)
        if hit is not None:
            self.hits += 1
            r = hit["reply"]
            return ChatReply(r["content"], int(r["prompt_tokens"]), int(r["completion_tokens"]), r["model"])
        if self.mode == "replay" or self.inner is None:
            last = one_line(messages[-1].get("content", "") if messages else "", 60)
            raise InfrastructureError(
                f"LLM cassette {self.path.name} has no recorded reply for this request (key {key}, last message {last!r})",
                "re-record the cassette with mode='record' against a real endpoint",
            )
        reply = self.inner.chat(
            messages, response_format=response_format, max_tokens=max_tokens, temperature=temperature
        )
        self._store(key, messages, response_format, reply)
        return reply

    def stream(
        self, messages: Messages, *, max_tokens: int = 1024, temperature: float = 0.0
    ) -> Iterator[str | StreamEnd]:
        """Replay a recorded streamed answer chunk by chunk; in record mode stream from ``inner`` and keep it."""
        fmt = {"stream": True}
        key = exchange_key(messages, fmt)
        with self._lock:
            hit = self._exchanges.get(key)
        if hit is not None:
            self.hits += 1
            r = hit["reply"]
            yield from r.get("chunks") or [r["content"]]
            yield StreamEnd(int(r["prompt_tokens"]), int(r["completion_tokens"]), r["model"])
            return
        if self.mode == "replay" or self.inner is None:
            self.chat(messages, response_format=fmt)  # raises the missing-exchange error
            return
        chunks: list[str] = []
        end = None
        for item in self.inner.stream(messages, max_tokens=max_tokens, temperature=temperature):
            if isinstance(item, StreamEnd):
                end = item
            else:
                chunks.append(item)
                yield item
        content = "".join(chunks)
        end = end or StreamEnd(0, 0, getattr(self.inner, "model", "") or self.inner.name, estimated=True)
        self._store(key, messages, fmt, ChatReply(content, end.prompt_tokens, end.completion_tokens, end.model),
                    chunks)
        yield end

    def _store(self, key: str, messages: Messages, response_format: dict[str, Any] | None, reply: ChatReply,
               chunks: list[str] | None = None) -> None:
        with self._lock:
            self._exchanges[key] = {
                "messages": [
                    {"role": m.get("role"), "content": redact(m.get("content", ""))} for m in messages
                ],
                "response_format": response_format,
                "reply": {
                    "content": reply.content,
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "model": reply.model,
                    **({"chunks": chunks} if chunks is not None else {}),
                },
            }
            self._save()
