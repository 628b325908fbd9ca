"""Chat backends: the one seam between tunesmith and a language model.

``OpenAIBackend`` talks to any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp's server);
``ScriptedBackend`` replays canned replies in tests; ``CassetteBackend`` (cassette.py) records and replays
real exchanges. ``LLM_BACKENDS`` names them for configuration and the conformance tests.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.runners.errors import InfrastructureError
from tunesmith.runners.registry import Registry

from .redact import one_line, register_secret

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class ChatReply:
    """One model answer with the token counts the endpoint reported (or an estimate where it reports none)."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    model: str


@dataclass(frozen=True)
class StreamEnd:
    """The last item of ``ChatBackend.stream``: the token counts of the whole streamed answer.

    ``estimated`` is True where the endpoint sent no usage (the counts are ``approx_tokens`` estimates).
    """

    prompt_tokens: int
    completion_tokens: int
    model: str
    estimated: bool = False


class LLMRequestError(InfrastructureError):
    """The endpoint refused or failed a request; ``status`` is the HTTP status (None: never reached it).

    ``timeout`` marks a request that got no answer in time: the client does not repeat those (a hanging
    endpoint would cost the full timeout again on every repeat).
    """

    def __init__(self, problem: str, fix: str = "", *, status: int | None = None, timeout: bool = False) -> None:
        super().__init__(one_line(problem, 400), one_line(fix, 200))
        self.status = status
        self.timeout = timeout


def approx_tokens(text: str) -> int:
    """A rough token count (4 characters per token), used for estimates and by backends that report none."""
    return (len(text) + 3) // 4


def messages_tokens(messages: Sequence[dict[str, Any]]) -> int:
    """Approximate prompt tokens of a message list, with a small per-message overhead."""
    return sum(approx_tokens(str(m.get("content") or "")) + 4 for m in messages)


class ChatBackend(abc.ABC):
    """Sends one chat request and returns a ``ChatReply``.

    ``response_format`` is passed through unchanged (the client decides its shape per endpoint).
    Failures of the machinery raise ``InfrastructureError`` (usually ``LLMRequestError``) whose text
    never contains an API key.
    """

    name: str = ""

    @abc.abstractmethod
    def chat(
        self,
        messages: Messages,
        *,
        response_format: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> ChatReply:
        """Send ``messages`` and return the model's reply."""

    def describe(self) -> str:
        """A short human description for logs ("openai at http://...")."""
        return self.name

    def stream(
        self, messages: Messages, *, max_tokens: int = 1024, temperature: float = 0.0
    ) -> Iterator[str | StreamEnd]:
        """Yield the free-text answer in pieces as they arrive, then one ``StreamEnd`` with the token counts.

        The default asks ``chat`` and yields its whole reply as one piece (backends that cannot stream).
        """
        reply = self.chat(messages, max_tokens=max_tokens, temperature=temperature)
        yield reply.content
        yield StreamEnd(reply.prompt_tokens, reply.completion_tokens, reply.model)


class OpenAIBackend(ChatBackend):
    """Any OpenAI-compatible chat-completions endpoint through the ``openai`` package."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str = "not-needed",
        model: str = "gpt-4o-mini",
        timeout: float = 120.0,
        transport_retries: int = 0,
    ) -> None:
        """``transport_retries`` is the openai package's own retrying, off by default: ``LLMClient`` decides
        what to repeat (never a timed-out request) and counts every failure."""
        import openai

        register_secret(api_key)
        self.base_url = base_url or "https://api.openai.com/v1"
        self.model = model
        self.timeout = timeout
        self._is_openai = "api.openai.com" in self.base_url
        self._usage_refused = False  # the server rejected stream_options (include_usage)
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=timeout, max_retries=transport_retries
        )

    def describe(self) -> str:
        return f"{self.model} at {self.base_url}"

    def chat(
        self,
        messages: Messages,
        *,
        response_format: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> ChatReply:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature}
        # OpenAI's newer models refuse max_tokens; other servers (vLLM, llama.cpp, Ollama) expect it.
        kwargs["max_completion_tokens" if self._is_openai else "max_tokens"] = max_tokens
        if response_format is not None:
            kwargs["response_format"] = response_format
        try:
            resp = self._client.chat.completions.create(**kwargs)
        except self._openai.OpenAIError as exc:
            raise self._translate(exc) from None
        if not resp.choices:
            raise LLMRequestError(f"LLM endpoint {self.base_url} returned no choices", "check the model name")
        content = resp.choices[0].message.content or ""
        usage = resp.usage
        prompt = usage.prompt_tokens if usage and usage.prompt_tokens else messages_tokens(messages)
        completion = usage.completion_tokens if usage and usage.completion_tokens else approx_tokens(content)
        return ChatReply(content, int(prompt), int(completion), resp.model or self.model)

    def stream(
        self, messages: Messages, *, max_tokens: int = 1024, temperature: float = 0.0
    ) -> Iterator[str | StreamEnd]:
        """``stream=True``; with ``stream_options.include_usage`` the last chunk carries the token counts.

        A server that rejects ``stream_options`` (HTTP 400/422) is asked again without it; where no usage
        arrives the counts are estimated (the completion as the larger of the chunk count and ``approx_tokens``).
        """
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature,
                                  "stream": True}
        kwargs["max_completion_tokens" if self._is_openai else "max_tokens"] = max_tokens
        try:
            try:
                chunks = self._client.chat.completions.create(**kwargs, stream_options={"include_usage": True})
            except self._openai.APIStatusError as exc:
                if exc.status_code not in (400, 422) or self._usage_refused:
                    raise
                self._usage_refused = True
                chunks = self._client.chat.completions.create(**kwargs)
            text: list[str] = []
            usage = None
            model = self.model
            for chunk in chunks:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.choices and chunk.choices[0].delta.content:
                    piece = chunk.choices[0].delta.content
                    text.append(piece)
                    yield piece
        except self._openai.OpenAIError as exc:
            raise self._translate(exc) from None
        content = "".join(text)
        if usage is not None and usage.completion_tokens:
            yield StreamEnd(int(usage.prompt_tokens or messages_tokens(messages)), int(usage.completion_tokens), model)
        else:
            # servers send about one token per chunk (llama-cpp-python's server sends no usage at all)
            yield StreamEnd(messages_tokens(messages), max(len(text), approx_tokens(content)), model, estimated=True)

    def _translate(self, exc: Exception) -> LLMRequestError:
        oa = self._openai
        where = f"LLM endpoint {self.base_url}"
        if isinstance(exc, oa.APITimeoutError):
            return LLMRequestError(
                f"{where} timed out after {self.timeout:g} s",
                "raise TUNESMITH_LLM_TIMEOUT or use a faster model",
                timeout=True,
            )
        if isinstance(exc, oa.APIConnectionError):
            cause = one_line(exc.__cause__ or exc, 120)
            return LLMRequestError(
                f"{where} is unreachable ({cause})",
                "start the server or correct base_url / TUNESMITH_LLM_BASE_URL",
            )
        if isinstance(exc, oa.AuthenticationError):
            return LLMRequestError(
                f"{where} rejected the API key (HTTP 401)",
                "set a valid key in the variable named by api_key_env",
                status=401,
            )
        if isinstance(exc, oa.APIStatusError):
            status = exc.status_code
            fix = "check the model name and the request"
            if status == 404:
                fix = "check the model name (set [llm].model or TUNESMITH_LLM_MODEL) and base_url"
            elif status == 429:
                fix = "wait, lower the request rate or raise the endpoint's quota"
            elif status >= 500:
                fix = "the server failed; if it rejects response_format, set TUNESMITH_LLM_STRUCTURED=json_object"
            return LLMRequestError(
                f"{where} answered HTTP {status}: {one_line(exc.message, 160)}", fix, status=status
            )
        return LLMRequestError(f"{where} failed: {one_line(exc, 160)}", "check the endpoint")


Script = Sequence["str | BaseException | Sequence[Any]"] | Callable[[Messages], Any]


class ScriptedBackend(ChatBackend):
    """A fake model for tests: canned replies (a list, or a callable of the messages).

    A list item that is an exception is raised instead of answered. An item that is a list or tuple is a
    streamed answer in chunks: ``stream`` yields each string chunk (``chunk_delay_s`` apart), raises an
    exception chunk where it stands (a failure mid-stream) and calls a callable chunk (e.g. ``event.wait``,
    so a test decides when the rest arrives); ``chat`` answers the strings joined. A plain string streams
    word by word. Every request is recorded in ``calls`` (messages, response_format, max_tokens, stream);
    tokens are counted with ``approx_tokens`` so accounting is testable.
    """

    name = "scripted"

    def __init__(self, replies: Script = (), *, model: str = "scripted", chunk_delay_s: float = 0.0) -> None:
        self._script = replies if callable(replies) else list(replies)
        self.model = model
        self.chunk_delay_s = chunk_delay_s
        self.calls: list[dict[str, Any]] = []
        self.chunks_sent = 0  # string chunks yielded by ``stream`` so far (tests watch it)

    @property
    def sent(self) -> list[Messages]:
        """The message lists received, in order."""
        return [c["messages"] for c in self.calls]

    def chat(
        self,
        messages: Messages,
        *,
        response_format: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> ChatReply:
        snapshot, item = self._next(messages, response_format, max_tokens, stream=False)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, (list, tuple)):
            item = "".join(c for c in item if isinstance(c, str))
        return ChatReply(str(item), messages_tokens(snapshot), approx_tokens(str(item)), self.model)

    def stream(
        self, messages: Messages, *, max_tokens: int = 1024, temperature: float = 0.0
    ) -> Iterator[str | StreamEnd]:
        """Yield the scripted answer chunk by chunk (see the class docstring), then its ``StreamEnd``."""
        snapshot, item = self._next(messages, None, max_tokens, stream=True)
        if isinstance(item, BaseException):
            raise item
        chunks = list(item) if isinstance(item, (list, tuple)) else [w for w in str(item).split(" ")]
        if not isinstance(item, (list, tuple)):
            chunks = [c + " " for c in chunks[:-1]] + chunks[-1:]
        text = []
        for i, chunk in enumerate(chunks):
            if isinstance(chunk, BaseException):
                raise chunk
            if callable(chunk):
                chunk()
                continue
            if i and self.chunk_delay_s:
                time.sleep(self.chunk_delay_s)
            text.append(str(chunk))
            self.chunks_sent += 1
            yield str(chunk)
        yield StreamEnd(messages_tokens(snapshot), approx_tokens("".join(text)), self.model)

    def _next(self, messages: Messages, response_format: dict[str, Any] | None, max_tokens: int,
              *, stream: bool) -> tuple[Messages, Any]:
        snapshot = [dict(m) for m in messages]
        self.calls.append(
            {"messages": snapshot, "response_format": response_format, "max_tokens": max_tokens, "stream": stream}
        )
        if callable(self._script):
            item: Any = self._script(snapshot)
        else:
            index = len(self.calls) - 1
            if index >= len(self._script):
                raise InfrastructureError(
                    f"scripted LLM ran out of replies after {len(self._script)} calls",
                    "give ScriptedBackend more replies",
                )
            item = self._script[index]
        return snapshot, item


LLM_BACKENDS: Registry[ChatBackend] = Registry(
    "LLM backend",
    {
        "openai": "tunesmith.agents.llm.backends:OpenAIBackend",
        "scripted": "tunesmith.agents.llm.backends:ScriptedBackend",
        "cassette": "tunesmith.agents.llm.cassette:CassetteBackend",
    },
)
