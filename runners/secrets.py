"""Secrets: which environment variables hold them, and a redactor for everything stored, logged or reported.

A variable is secret when its name looks like one (``*_API_KEY``, ``*TOKEN*`` other than tokenizer
settings, ``*SECRET*``, ``*PASSWORD*``/``*PASSWD*``, ``*CREDENTIAL*``) or when it was named explicitly
with ``register_secret_name`` (the job's ``llm.api_key_env``). ``redact`` replaces the value of every
secret variable present in the environment (values of 8 characters or more), every value handed to
``register_secret`` and every string shaped like a key (``sk-...``, ``Bearer ...``, ``api_key=...``,
GitHub, Hugging Face, AWS and Slack tokens) with ``[redacted]``. ``scrubbed_env`` removes secret
variables from an environment before it is given to a workload.

This module sits at the bottom layer so the runners, the store, the reports and the LLM client all use
the same rules.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[redacted]"
MIN_SECRET_LEN = 8  # shorter values would garble ordinary text
_PLACEHOLDERS = frozenset({"not-needed"})

_SECRET_NAME = re.compile(r"API_?KEY|TOKEN(?!IZER)|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_WHOLE = [  # key shapes masked whole, keeping a short prefix that says what it was
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), ""),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), ""),
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), ""),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), ""),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), ""),
]
_AFTER = [  # the secret follows a label, which is kept
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|authorization|secret|password)[\"']?\s*[:=]\s*[\"']?)(?!(?:bearer|basic)\s)"
               r"[^\s\"',}\[]{6,}"),
]

# Every match of a key shape above contains one of these literals (compared lower-cased): ASCII text with
# none of them cannot match a shape, so ``redact`` skips the shapes for it (most stored text: configs,
# measurements, events). Non-ASCII text always runs them (a case-blind match can use letters like "ſ").
_HINT = re.compile(r"sk-|gh[pousr]_|github_pat_|hf_|akia|xox[abprs]-|bearer|basic|api[_-]?key|authorization"
                   r"|secret|password")

_lock = threading.Lock()
_values: set[str] = set()
_names: set[str] = set()
_generation = 0  # bumped by every register_*: a cached ``secret_values`` answer is then stale
_cache: tuple[Any, list[str], list[str]] | None = None  # (what it was computed from, values, their forms)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable of this name holds a secret."""
    with _lock:
        if name in _names:
            return True
    return bool(_SECRET_NAME.search(name))


def register_secret_name(name: str | None) -> None:
    """Treat the variable ``name`` as secret even if its name does not look like one."""
    global _generation
    if name:
        with _lock:
            _names.add(name)
            _generation += 1


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. an API key read at start-up) so ``redact`` masks it everywhere.

    Values shorter than 8 characters and placeholders such as "not-needed" are ignored.
    """
    global _generation
    if value and len(value) >= MIN_SECRET_LEN and value not in _PLACEHOLDERS:
        with _lock:
            _values.add(value)
            _generation += 1


def _environ_state() -> Any:
    """A cheap snapshot of ``os.environ`` that differs whenever a variable is set, changed or removed."""
    raw = getattr(os.environ, "_data", None)  # CPython keeps the raw (encoded) items here: no decoding
    return tuple(raw.items()) if isinstance(raw, dict) else tuple(os.environ.items())


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value known now (registered, or in a secret variable of ``env``), longest first.

    For the process environment (``env=None``) the answer is cached until a variable changes or a secret
    (or secret name) is registered: ``redact`` runs on every stored row and would otherwise scan the
    whole environment each time.
    """
    if env is None:
        return list(_cached()[1])
    return _secret_values(env)


def _cached() -> tuple[Any, list[str], list[str]]:
    """The process environment's secret values and the forms ``redact`` looks for, recomputed on change."""
    global _cache
    state = (_generation, _environ_state())
    cached = _cache
    if cached is None or cached[0] != state:
        values = _secret_values(os.environ)
        forms = list(dict.fromkeys(f for v in values for f in (v, json.dumps(v)[1:-1])))
        cached = _cache = (state, values, forms)
    return cached


def _secret_values(env: Mapping[str, str]) -> list[str]:
    with _lock:
        found = set(_values)
    for name, value in env.items():
        if len(value) >= MIN_SECRET_LEN and value not in _PLACEHOLDERS and is_secret_name(name):
            found.add(value)
    return sorted(found, key=len, reverse=True)


def redact(text: Any) -> str:
    """``text`` as a string with every secret value and every key-shaped string replaced by ``[redacted]``."""
    out = text if isinstance(text, str) else str(text)
    if not out:
        return out
    for form in _cached()[2]:  # each value as it is, and as it appears inside JSON text
        if form in out:
            out = out.replace(form, MASK)
    if not may_hold_shape(out):
        return out
    for pattern, keep in _WHOLE:
        out = pattern.sub(keep + MASK, out)
    for pattern in _AFTER:
        out = pattern.sub(lambda m: m.group(1) + MASK, out)
    return out


def may_hold_shape(text: str) -> bool:
    """Whether a key shape could match ``text``: False only for ASCII text without any shape's literal."""
    return not text.isascii() or _HINT.search(text.lower()) is not None


def redact_obj(obj: Any) -> Any:
    """A copy of nested dicts/lists/tuples with every string (keys included) redacted; other values as they are."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, Mapping):
        return {(redact(k) if isinstance(k, str) else k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj


def scrubbed_env(env: Mapping[str, str], passthrough: Iterable[str] = ()) -> dict[str, str]:
    """``env`` without its secret variables, except the names in ``passthrough``.

    A variable is also dropped when its value is a registered secret, whatever its name.
    """
    keep = set(passthrough)
    with _lock:
        values = set(_values)
    return {
        k: v for k, v in env.items() if k in keep or not (is_secret_name(k) or (v in values and len(v) >= MIN_SECRET_LEN))
    }
