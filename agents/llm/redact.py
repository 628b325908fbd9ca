"""Keep API keys out of errors, logs and ledgers: every text that leaves the LLM layer goes through ``redact``.

The rules live in ``tunesmith.runners.secrets`` (the bottom layer, shared with the runners, the store and
the reports); this module re-exports them for the LLM layer and adds ``one_line``.
"""

from __future__ import annotations

from typing import Any

from tunesmith.runners.secrets import MASK, redact, redact_obj, register_secret, register_secret_name

__all__ = ["MASK", "one_line", "redact", "redact_obj", "register_secret", "register_secret_name"]


def one_line(text: Any, limit: int = 240) -> str:
    """Redacted, whitespace collapsed to single spaces, cut to ``limit`` characters."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
