"""A small plugin registry: name -> "module:attribute", imported on first use."""

from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

from .errors import JobError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps plugin names to lazily imported classes, so optional parts (Triton, llama.cpp) load only when used."""

    def __init__(self, kind: str, entries: dict[str, str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, str | type[T]] = dict(entries or {})

    def register(self, name: str, target: str | type[T]) -> None:
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> type[T]:
        if name not in self._entries:
            raise JobError(f"unknown {self.kind} {name!r}", f"use one of {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)
