"""Keep API keys out of errors, logs and ledgers: every text that leaves the LLM layer goes through ``redact``."""

from __future__ import annotations

import re
import threading
from typing import Any

_MASK = "***"
# Shapes of common secrets: OpenAI-style keys (sk-..., sk-proj-...), bearer headers, key=value pairs.
_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
]

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value (an API key read from the environment) so ``redact`` removes it everywhere.

    Values shorter than 8 characters and the placeholder "not-needed" are ignored: masking them would
    garble ordinary text.
    """
    if value and len(value) >= 8 and value != "not-needed":
        with _lock:
            _secrets.add(value)


def redact(text: Any) -> str:
    """``text`` as a string with every registered secret and every key-shaped string masked."""
    out = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        out = out.replace(secret, _MASK)
    out = _PATTERNS[0].sub("sk-" + _MASK, out)
    for pattern in _PATTERNS[1:]:
        out = pattern.sub(lambda m: m.group(1) + _MASK, out)
    return out


def one_line(text: Any, limit: int = 240) -> str:
    """Redacted, whitespace collapsed to single spaces, cut to ``limit`` characters."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
