"""Token and cost accounting for one study, per purpose (plan, code, judge, reflect...)."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from tunesmith.runners.errors import TunesmithError

from .redact import redact


class LLMBudgetExceeded(TunesmithError):
    """The next LLM call would spend more tokens than the study's budget allows (exit code 6)."""

    exit_code = 6


@dataclass
class Usage:
    """Counters for one purpose (or the total).

    ``calls`` counts every request sent, answered or not; ``failed_calls`` those that got no answer
    (timeout, unreachable, HTTP error); ``failures`` structured requests that never gave valid output.
    """

    calls: int = 0
    retries: int = 0
    failures: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class TokenLedger:
    """Per-study totals of LLM calls, retries, tokens and cost (prices are per million tokens).

    Thread-safe. ``to_dict``/``from_dict`` let a resumed study keep counting where it stopped;
    ``dump`` is the JSON written to reports and logs (redacted).
    """

    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    by_purpose: dict[str, Usage] = field(default_factory=dict)
    models: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what happened to the endpoint (e.g. the breaker opened)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(
        self,
        purpose: str,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        model: str = "",
        retry: bool = False,
    ) -> float:
        """Count one call; returns its cost."""
        cost = (prompt_tokens * self.price_in_per_mtok + completion_tokens * self.price_out_per_mtok) / 1e6
        with self._lock:
            u = self.by_purpose.setdefault(purpose, Usage())
            u.calls += 1
            u.retries += int(retry)
            u.prompt_tokens += prompt_tokens
            u.completion_tokens += completion_tokens
            u.cost += cost
            if model:
                self.models[model] = self.models.get(model, 0) + 1
        return cost

    def record_failed_call(self, purpose: str, *, retry: bool = False) -> None:
        """Count a request that got no answer (timeout, transport error, HTTP error)."""
        with self._lock:
            u = self.by_purpose.setdefault(purpose, Usage())
            u.calls += 1
            u.failed_calls += 1
            u.retries += int(retry)

    def note(self, text: str) -> None:
        """Keep a line about the endpoint for the report (redacted when dumped)."""
        with self._lock:
            self.notes.append(text)

    def record_failure(self, purpose: str) -> None:
        """Count a structured request that never produced valid output."""
        with self._lock:
            self.by_purpose.setdefault(purpose, Usage()).failures += 1

    @property
    def total(self) -> Usage:
        with self._lock:
            t = Usage()
            for u in self.by_purpose.values():
                t.calls += u.calls
                t.retries += u.retries
                t.failures += u.failures
                t.failed_calls += u.failed_calls
                t.prompt_tokens += u.prompt_tokens
                t.completion_tokens += u.completion_tokens
                t.cost += u.cost
            return t

    @property
    def tokens(self) -> int:
        """All tokens spent so far, prompt and completion."""
        return self.total.tokens

    def check_budget(self, limit: int | None, upcoming: int = 0) -> None:
        """Raise ``LLMBudgetExceeded`` if ``upcoming`` more tokens would take the total past ``limit``.

        ``limit`` None means unlimited. Call it before a request with an estimate of that request.
        """
        if limit is None:
            return
        spent = self.tokens
        if spent + upcoming > limit:
            raise LLMBudgetExceeded(
                f"LLM token budget exhausted: {spent} spent + ~{upcoming} for the next call > {limit}",
                "raise budget.llm_tokens in the job, or let strategies continue without the LLM",
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain data: prices, per-purpose counters, totals and model call counts."""
        with self._lock:
            purposes = {k: asdict(v) for k, v in sorted(self.by_purpose.items())}
            models = dict(self.models)
            notes = list(self.notes)
        total = asdict(self.total)
        return {
            "price_in_per_mtok": self.price_in_per_mtok,
            "price_out_per_mtok": self.price_out_per_mtok,
            "total": total,
            "by_purpose": purposes,
            "models": models,
            "notes": notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenLedger:
        """Rebuild a ledger saved with ``to_dict``."""
        ledger = cls(float(data.get("price_in_per_mtok", 0.0)), float(data.get("price_out_per_mtok", 0.0)))
        for purpose, counters in data.get("by_purpose", {}).items():
            ledger.by_purpose[purpose] = Usage(**counters)
        ledger.models.update(data.get("models", {}))
        ledger.notes.extend(str(n) for n in data.get("notes", []))
        return ledger

    def dump(self) -> str:
        """The ledger as redacted JSON."""
        return redact(json.dumps(self.to_dict(), sort_keys=True))

    def summary(self) -> str:
        """One line for the CLI and the report: calls, retries, failures, tokens, cost and the last note."""
        t = self.total
        counts = [f"{t.retries} retries"]
        counts += [f"{t.failed_calls} failed"] if t.failed_calls else []
        counts += [f"{t.failures} without valid output"] if t.failures else []
        line = f"LLM: {t.calls} calls ({', '.join(counts)}), {t.prompt_tokens}+{t.completion_tokens} tokens"
        if t.cost:
            line += f", ${t.cost:.4f}"
        with self._lock:
            last = self.notes[-1] if self.notes else ""
        return redact(f"{line}; {last}" if last else line)
