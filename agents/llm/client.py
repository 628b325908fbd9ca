"""LLMClient: the one door every agent call goes through — structured output, retries, budget, accounting."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from tunesmith.runners.errors import InfrastructureError, TunesmithError

from .backends import (
    ChatBackend,
    ChatReply,
    LLMRequestError,
    Messages,
    StreamEnd,
    approx_tokens,
    messages_tokens,
)
from .ledger import LLMBudgetExceeded, TokenLedger
from .redact import one_line, redact
from .structured import (
    STRUCTURED_MODES,
    feedback,
    parse_reply,
    response_format,
    schema_instruction,
    with_instruction,
)

__all__ = ["LLMBudgetExceeded", "LLMClient", "LLMOutputError", "LLMUnavailable", "TokenLedger", "redact"]

log = logging.getLogger("tunesmith.llm")
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
BREAKER_AFTER = 3  # failed calls in a row after which the client stops calling the endpoint

# HTTP statuses with which endpoints reject a response_format they do not support (llama.cpp: 500).
_FORMAT_REJECTED = {400, 422, 500, 501}


_DONE = object()  # the end of a stream


class LLMOutputError(InfrastructureError):
    """The model did not produce output matching the schema within the allowed retries."""


class LLMUnavailable(InfrastructureError):
    """The endpoint failed several calls in a row, so the client stopped calling it; calls now fail at once."""


class LLMClient:
    """Sends chat requests through a ``ChatBackend`` and returns validated pydantic objects.

    ``structured_mode`` is "json_schema", "json_object", "prompt" or "auto" (try json_schema, fall back
    to json_object, then prompt, when the endpoint rejects the response format; the working mode is kept).
    Invalid output is retried up to ``max_retries`` times with the validation error fed back.
    ``prices`` are (input, output) dollars per million tokens; every call is counted in ``ledger``
    under its ``purpose``; with ``token_budget`` set, a call that would pass it is refused beforehand.

    A request that fails in transport (unreachable, HTTP 429 or 5xx) is repeated up to ``transport_retries``
    times; one that timed out is not (a hanging endpoint would cost the whole timeout again). Every failed
    request is counted in the ledger. After ``breaker_after`` calls in a row fail, the breaker opens: later
    calls raise ``LLMUnavailable`` at once, the ledger keeps a note and ``take_notice`` hands that note
    once to whoever reports it (the agents then continue offline).
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        model: str | None = None,
        structured_mode: str = "json_schema",
        max_retries: int = 3,
        prices: tuple[float, float] = (0.0, 0.0),
        ledger: TokenLedger | None = None,
        token_budget: int | None = None,
        transport_retries: int = 1,
        retry_backoff_s: float = 0.5,
        breaker_after: int = BREAKER_AFTER,
    ) -> None:
        if structured_mode not in (*STRUCTURED_MODES, "auto"):
            raise TunesmithError(
                f"unknown structured output mode {structured_mode!r}",
                f"use one of {', '.join((*STRUCTURED_MODES, 'auto'))}",
            )
        if max_retries < 0:
            raise TunesmithError("max_retries must not be negative", "use 0 or more")
        self.backend = backend
        self.model = model or getattr(backend, "model", None) or backend.name
        self.structured_mode = structured_mode
        self._mode = "json_schema" if structured_mode == "auto" else structured_mode
        self._mode_confirmed = structured_mode != "auto"  # auto: until the endpoint accepted a format
        self.max_retries = max_retries
        self.ledger = ledger if ledger is not None else TokenLedger()
        if ledger is None or any(prices):
            self.ledger.price_in_per_mtok, self.ledger.price_out_per_mtok = prices
        self.token_budget = token_budget
        self.transport_retries = max(0, transport_retries)
        self.retry_backoff_s = retry_backoff_s
        self.breaker_after = max(1, breaker_after)
        self._lock = threading.Lock()
        self._failed_in_row = 0
        self._open_note = ""  # set when the breaker opened: why the endpoint is no longer called
        self._notice: str | None = None  # the same note, until take_notice hands it out

    @property
    def available(self) -> bool:
        """False once the breaker opened: the endpoint failed too often in a row and is no longer called."""
        return not self._open_note

    def take_notice(self) -> str | None:
        """The breaker's note, the first time it is asked for after the breaker opened; else None."""
        with self._lock:
            notice, self._notice = self._notice, None
        return notice

    @property
    def mode(self) -> str:
        """The structured mode in use now (resolved from "auto" after the first request)."""
        return self._mode

    def describe(self) -> str:
        return self.backend.describe()

    # plain text ------------------------------------------------------------------------------------
    def chat(
        self, messages: Messages, *, purpose: str, max_tokens: int = 1024, temperature: float = 0.0
    ) -> str:
        """Free-text answer (explanations, summaries); counted and budgeted like structured calls."""
        reply = self._guarded(
            lambda: self._send(list(messages), None, purpose=purpose, max_tokens=max_tokens, temperature=temperature)
        )
        return reply.content

    # streamed text -----------------------------------------------------------------------------------
    def stream_text(
        self, purpose: str, messages: Messages, *, max_tokens: int = 1024, temperature: float = 0.0
    ) -> Iterator[str]:
        """A free-text answer yielded in pieces as the endpoint produces them (``stream=True``).

        Counted in the ledger under ``purpose`` once the stream ends: the endpoint's own usage where it sent
        one, else an estimate of what arrived (also when the caller stops reading early). Budgeted, retried and
        guarded by the breaker like ``chat``, except that a request is repeated only before its first piece
        arrived: a failure after that raises (redacted) and the caller keeps what it already showed.
        """
        if self._open_note:
            raise LLMUnavailable(self._open_note, "check the endpoint, then run the study again to use it")
        messages = list(messages)
        attempt = 0
        while True:
            self.ledger.check_budget(self.token_budget, messages_tokens(messages) + max_tokens)
            pieces = self.backend.stream(messages, max_tokens=max_tokens, temperature=temperature)
            try:
                first = self._pull(pieces)
            except InfrastructureError as exc:
                self.ledger.record_failed_call(purpose, retry=attempt > 0)
                if attempt >= self.transport_retries or not self._repeatable(exc, None):
                    self._count_failure(exc)
                    raise
                attempt += 1
                log.info("%s: stream failed before its first piece (%s); asking again (%d/%d)", purpose,
                         redact(exc.line()), attempt, self.transport_retries)
                time.sleep(self.retry_backoff_s * attempt)
                continue
            break
        yield from self._relay(purpose, messages, pieces, first, retry=attempt > 0)

    def _relay(
        self, purpose: str, messages: Messages, pieces: Iterator[str | StreamEnd], item: Any, *, retry: bool
    ) -> Iterator[str]:
        """Yield the stream's text, then count it; a failure mid-stream is counted and raised."""
        shown: list[str] = []
        end: StreamEnd | None = None
        try:
            while item is not _DONE:
                if isinstance(item, StreamEnd):
                    end = item
                else:
                    shown.append(item)
                    yield item
                item = self._pull(pieces)
        except InfrastructureError as exc:
            self.ledger.record_failed_call(purpose, retry=retry)
            self._count_failure(exc)
            raise
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        if end is None:  # the backend sent no counts (or the caller stopped early): estimate what arrived
            end = StreamEnd(messages_tokens(messages), approx_tokens("".join(shown)), self.model, estimated=True)
        self._failed_in_row = 0
        self.ledger.record(purpose, prompt_tokens=end.prompt_tokens, completion_tokens=end.completion_tokens,
                           model=end.model, retry=retry)
        log.debug("%s: streamed %d+%d tokens from %s%s", purpose, end.prompt_tokens, end.completion_tokens,
                  redact(end.model), " (estimated)" if end.estimated else "")

    def _pull(self, pieces: Iterator[str | StreamEnd]) -> Any:
        """The next stream item (``_DONE`` at the end); backend errors become one redacted line."""
        try:
            item = next(pieces, _DONE)
        except TunesmithError as exc:
            if redact(exc.line()) != exc.line():
                exc.problem, exc.fix = redact(exc.problem), redact(exc.fix)
                exc.args = (exc.line(),)
            raise
        except Exception as exc:  # a backend bug or an unexpected transport error: one redacted line
            raise InfrastructureError(
                redact(f"LLM backend {self.backend.name} failed: {type(exc).__name__}: {one_line(exc, 160)}"),
                "check the LLM endpoint, or run with --llm off",
            ) from None
        return redact(item) if isinstance(item, str) else item

    def _count_failure(self, exc: InfrastructureError) -> None:
        """One failed call toward the breaker (as ``_guarded`` counts them)."""
        with self._lock:
            self._failed_in_row += 1
            if self._failed_in_row >= self.breaker_after and not self._open_note:
                self._open(exc)

    # structured ------------------------------------------------------------------------------------
    def structured(
        self,
        messages: Sequence[dict[str, Any]],
        schema: type[M],
        *,
        purpose: str,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> M:
        """Ask for one ``schema`` object; validated, retried on malformed output, then ``LLMOutputError``."""
        return self._guarded(lambda: self._structured(list(messages), schema, purpose, max_tokens, temperature))

    def _structured(
        self, messages: Messages, schema: type[M], purpose: str, max_tokens: int, temperature: float
    ) -> M:
        while True:
            mode = self._mode
            try:
                result = self._attempts(list(messages), schema, mode, purpose, max_tokens, temperature)
            except LLMRequestError as exc:
                nxt = self._fallback(mode, exc)
                if nxt is None:
                    raise
                log.info("endpoint rejected structured mode %s (%s); trying %s", mode, redact(exc), nxt)
                self._mode = nxt
                continue
            return result  # type: ignore[return-value]

    def _fallback(self, mode: str, exc: LLMRequestError) -> str | None:
        if self._mode_confirmed or exc.status not in _FORMAT_REJECTED:
            return None
        order = list(STRUCTURED_MODES)
        i = order.index(mode)
        return order[i + 1] if i + 1 < len(order) else None

    def _attempts(
        self,
        messages: Messages,
        schema: type[BaseModel],
        mode: str,
        purpose: str,
        max_tokens: int,
        temperature: float,
    ) -> BaseModel:
        fmt = response_format(mode, schema)
        convo = messages if mode == "json_schema" else with_instruction(messages, schema_instruction(schema))
        reason = ""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            reply = self._send(
                convo, fmt, purpose=purpose, max_tokens=max_tokens, temperature=temperature, retry=attempt > 0
            )
            self._mode_confirmed = True
            try:
                return parse_reply(reply.content, schema)
            except ValueError as exc:
                reason = one_line(exc, 300)
                log.info(
                    "%s: invalid %s (attempt %d/%d): %s",
                    purpose,
                    schema.__name__,
                    attempt + 1,
                    attempts,
                    reason,
                )
                convo = [
                    *convo,
                    {"role": "assistant", "content": reply.content[:4000]},
                    {"role": "user", "content": feedback(reason)},
                ]
        self.ledger.record_failure(purpose)
        raise LLMOutputError(
            redact(
                f"the LLM ({one_line(self.model, 60)}) gave no valid {schema.__name__} for {purpose!r} "
                f"in {attempts} attempts (last problem: {reason})"
            ),
            "use a stronger model, raise [llm].max_retries, or run with --llm off",
        )

    # the circuit breaker ---------------------------------------------------------------------------------
    def _guarded(self, call: Callable[[], T]) -> T:
        """Run one client call; count it toward the breaker if the endpoint failed it."""
        if self._open_note:
            raise LLMUnavailable(self._open_note, "check the endpoint, then run the study again to use it")
        try:
            result = call()
        except LLMOutputError:  # the endpoint answered; the model did not follow the schema
            self._failed_in_row = 0
            raise
        except InfrastructureError as exc:
            with self._lock:
                self._failed_in_row += 1
                if self._failed_in_row >= self.breaker_after and not self._open_note:
                    self._open(exc)
            raise
        self._failed_in_row = 0
        return result

    def _open(self, exc: InfrastructureError) -> None:
        where = getattr(self.backend, "base_url", None) or self.describe()
        if isinstance(exc, LLMRequestError) and exc.timeout:
            seconds = getattr(self.backend, "timeout", None)
            why = f"timeout after {seconds:g} s" if isinstance(seconds, (int, float)) else "timeout"
        elif isinstance(exc, LLMRequestError) and exc.status is not None:
            why = f"HTTP {exc.status}"
        elif isinstance(exc, LLMRequestError):
            why = "unreachable"
        else:
            why = one_line(exc.problem, 120)
        note = redact(f"LLM endpoint {where} failed {self._failed_in_row} times in a row ({why}); "
                      "continuing offline for the rest of the study")
        self._open_note = self._notice = note
        self.ledger.note(note)
        log.warning("%s", note)

    def _repeatable(self, exc: InfrastructureError, fmt: dict[str, Any] | None) -> bool:
        """Whether a failed request is worth sending again: transport trouble, not a timeout or a refusal."""
        if not isinstance(exc, LLMRequestError) or exc.timeout:
            return False
        if fmt is not None and not self._mode_confirmed and exc.status in _FORMAT_REJECTED:
            return False  # auto mode: the next structured mode is tried instead
        return exc.status is None or exc.status == 429 or exc.status >= 500

    # one request -------------------------------------------------------------------------------------
    def _send(
        self,
        messages: Messages,
        fmt: dict[str, Any] | None,
        *,
        purpose: str,
        max_tokens: int,
        temperature: float,
        retry: bool = False,
    ) -> ChatReply:
        attempt = 0
        while True:
            self.ledger.check_budget(self.token_budget, messages_tokens(messages) + max_tokens)
            try:
                reply = self._request(messages, fmt, max_tokens=max_tokens, temperature=temperature)
            except InfrastructureError as exc:
                self.ledger.record_failed_call(purpose, retry=retry or attempt > 0)
                if attempt >= self.transport_retries or not self._repeatable(exc, fmt):
                    raise
                attempt += 1
                log.info("%s: request failed (%s); sending it again (%d/%d)", purpose, redact(exc.line()),
                         attempt, self.transport_retries)
                time.sleep(self.retry_backoff_s * attempt)
                continue
            break
        self.ledger.record(
            purpose,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            model=reply.model,
            retry=retry or attempt > 0,
        )
        log.debug(
            "%s: %d+%d tokens from %s",
            purpose,
            reply.prompt_tokens,
            reply.completion_tokens,
            redact(reply.model),
        )
        return reply

    def _request(
        self, messages: Messages, fmt: dict[str, Any] | None, *, max_tokens: int, temperature: float
    ) -> ChatReply:
        try:
            return self.backend.chat(messages, response_format=fmt, max_tokens=max_tokens, temperature=temperature)
        except TunesmithError as exc:
            if redact(exc.line()) != exc.line():  # a backend let a secret slip into its message
                exc.problem, exc.fix = redact(exc.problem), redact(exc.fix)
                exc.args = (exc.line(),)
            raise
        except Exception as exc:  # a backend bug or an unexpected transport error: one redacted line
            raise InfrastructureError(
                f"LLM backend {self.backend.name} failed: {type(exc).__name__}: {one_line(exc, 160)}",
                "check the LLM endpoint, or run with --llm off",
            ) from None
