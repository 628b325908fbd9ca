"""Decide which LLM mode runs (offline, endpoint, local) from the CLI, the job's [llm] and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlparse

from tunesmith.runners.errors import JobError, TunesmithError
from tunesmith.runners.job import LLMConfig

from .backends import OpenAIBackend
from .client import LLMClient
from .ledger import TokenLedger
from .local_server import LocalLLMServer
from .redact import register_secret
from .structured import STRUCTURED_MODES

OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
NO_KEY = "not-needed"
OFFLINE_DESCRIPTION = (
    "offline: no LLM endpoint configured — strategies, knowledge rules and templates stand in for the planner"
)
ENV_BASE_URL, ENV_MODEL = "TUNESMITH_LLM_BASE_URL", "TUNESMITH_LLM_MODEL"
ENV_STRUCTURED, ENV_TIMEOUT = "TUNESMITH_LLM_STRUCTURED", "TUNESMITH_LLM_TIMEOUT"
MODES = ("auto", "off", "endpoint", "local")


class LLMSetup:
    """The outcome of ``resolve_llm``: a client (None when offline), the mode that runs and a plain description.

    A context manager: leaving it stops the local server, if one was started.
    """

    def __init__(
        self,
        client: LLMClient | None,
        mode: Literal["offline", "endpoint", "local"],
        description: str,
        server: LocalLLMServer | None = None,
    ) -> None:
        self.client = client
        self.mode = mode
        self.description = description
        self.server = server

    @property
    def online(self) -> bool:
        return self.client is not None

    def close(self) -> None:
        """Stop the local server (if any); safe to call twice."""
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> LLMSetup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LLMSetup({self.description!r})"


def _is_openai(url: str) -> bool:
    return urlparse(url).hostname == "api.openai.com"


def _timeout(env: Mapping[str, str]) -> float:
    raw = env.get(ENV_TIMEOUT, "120")
    try:
        value = float(raw)
    except ValueError:
        raise JobError(f"{ENV_TIMEOUT}={raw!r} is not a number", "set it to seconds, e.g. 120") from None
    if value <= 0:
        raise JobError(f"{ENV_TIMEOUT} must be positive", "set it to seconds, e.g. 120")
    return value


def _structured_mode(env: Mapping[str, str], default: str) -> str:
    mode = env.get(ENV_STRUCTURED, "").strip() or default
    if mode not in (*STRUCTURED_MODES, "auto"):
        raise JobError(
            f"{ENV_STRUCTURED}={mode!r} is not a structured mode",
            f"use one of {', '.join(STRUCTURED_MODES)}, auto",
        )
    return mode


def _client(
    cfg: LLMConfig, backend: OpenAIBackend, mode: str, ledger: TokenLedger | None, budget: int | None
) -> LLMClient:
    return LLMClient(
        backend,
        model=backend.model,
        structured_mode=mode,
        max_retries=cfg.max_retries,
        prices=(cfg.price_in_per_mtok, cfg.price_out_per_mtok),
        ledger=ledger,
        token_budget=budget,
    )


def resolve_llm(
    cfg: LLMConfig | None = None,
    override_mode: str | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    ledger: TokenLedger | None = None,
    token_budget: int | None = None,
) -> LLMSetup:
    """Pick the LLM mode: CLI ``override_mode`` first, then the job's ``[llm]``, then the environment.

    auto: an endpoint when a base_url (job or ``TUNESMITH_LLM_BASE_URL``) or an API key for OpenAI is
    configured, else offline. off: offline. endpoint: that endpoint, or a one-line error if none is
    configured. local: starts SmolLM2 under llama.cpp (stopped when the returned setup is closed).
    """
    cfg = cfg or LLMConfig()
    mode = (override_mode or cfg.mode).strip().lower()
    if mode not in MODES:
        raise JobError(f"unknown LLM mode {mode!r}", f"use one of {', '.join(MODES)}")
    if mode == "off":
        return LLMSetup(
            None,
            "offline",
            "offline: LLM turned off — strategies, knowledge rules and templates stand in for the planner",
        )
    timeout = _timeout(env)
    if mode == "local":
        server = LocalLLMServer()
        try:
            server.start()
            backend = OpenAIBackend(base_url=server.base_url, model=server.model, timeout=timeout)
            client = _client(
                cfg, backend, _structured_mode(env, server.structured_mode), ledger, token_budget
            )
        except BaseException:
            server.stop()
            raise
        return LLMSetup(client, "local", f"local: {server.describe()}", server)

    base_url = cfg.base_url or env.get(ENV_BASE_URL, "").strip() or None
    key = env.get(cfg.api_key_env, "").strip() or None
    register_secret(key)
    if base_url is None and key is None:
        if mode == "endpoint":
            raise JobError(
                "--llm endpoint but no LLM endpoint is configured",
                f"set [llm].base_url or {ENV_BASE_URL} (and {cfg.api_key_env} if it needs a key)",
            )
        return LLMSetup(None, "offline", OFFLINE_DESCRIPTION)
    url = (base_url or OPENAI_URL).rstrip("/")
    if _is_openai(url) and key is None:
        raise TunesmithError(
            f"the OpenAI endpoint needs an API key but ${cfg.api_key_env} is empty",
            f"export {cfg.api_key_env}=... or use --llm off",
        )
    model = cfg.model or env.get(ENV_MODEL, "").strip() or (DEFAULT_OPENAI_MODEL if _is_openai(url) else None)
    if model is None:
        raise JobError(
            f"no model named for the LLM endpoint {url}",
            f"set [llm].model or {ENV_MODEL} (e.g. the name vLLM/Ollama serves)",
        )
    backend = OpenAIBackend(base_url=url, api_key=key or NO_KEY, model=model, timeout=timeout)
    structured = _structured_mode(env, "json_schema" if _is_openai(url) else "auto")
    client = _client(cfg, backend, structured, ledger, token_budget)
    return LLMSetup(client, "endpoint", f"endpoint: {model} at {url}")
