"""tunesmith.agents.llm: the one LLM client every agent call goes through.

``resolve_llm`` picks the mode (offline, endpoint, local) and returns an ``LLMSetup`` holding an
``LLMClient``; ``LLMClient.structured`` returns validated pydantic objects and counts every token in a
``TokenLedger``. Backends (OpenAI-compatible, scripted, cassette) live in ``LLM_BACKENDS``.
"""

from .backends import LLM_BACKENDS, ChatBackend, ChatReply, LLMRequestError, OpenAIBackend, ScriptedBackend
from .cassette import CassetteBackend
from .client import LLMClient, LLMOutputError, LLMUnavailable
from .config import LLMSetup, resolve_llm
from .ledger import LLMBudgetExceeded, TokenLedger, Usage
from .local_server import LocalLLMServer
from .redact import redact, register_secret

__all__ = [
    "LLM_BACKENDS",
    "CassetteBackend",
    "ChatBackend",
    "ChatReply",
    "LLMBudgetExceeded",
    "LLMClient",
    "LLMOutputError",
    "LLMRequestError",
    "LLMSetup",
    "LLMUnavailable",
    "LocalLLMServer",
    "OpenAIBackend",
    "ScriptedBackend",
    "TokenLedger",
    "Usage",
    "redact",
    "register_secret",
    "resolve_llm",
]
