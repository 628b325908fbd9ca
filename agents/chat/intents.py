"""What a chat line asks for, by simple rules: enough to answer without an LLM and to force an LLM's tool choice.

Recognised: list, status, best, show (trial N), compare (A and B), why (trial N, or ``why threads 8?``),
a job described in words with its command in backticks (``tune `python bench.py --threads 4` for throughput``),
approving or declining the drafted job, small edits to it (``trials 4``, ``values threads 1,2,4``), reload,
help and quit. Anything else is ``open``: a question only an LLM can answer.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

_YES = re.compile(r"^\s*(y|yes|yep|ok|okay|approve[d]?|go( ahead)?|run( it)?|start( it)?|sure|do it)\s*[.!]*\s*$", re.I)
_NO = re.compile(r"^\s*(n|no|nope|cancel|stop|don'?t|do not|abort)\s*[.!]*\s*$", re.I)
_NUM = r"#?(\d+)"


@dataclass
class Intent:
    """A recognised request: ``kind`` and its arguments (``trial``, ``a``/``b``, ``param``/``value``, ...)."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def tool(self) -> str | None:
        """The tools/ operation that answers this intent, when there is exactly one."""
        return {"list": "list_studies", "status": "show_study", "best": "show_study", "show": "show_trial",
                "compare": "compare_trials", "why": "show_trial"}.get(self.kind)


def _study_named(text: str) -> str | None:
    m = re.search(r"\bstudy\s+[\"'`]?([A-Za-z0-9_.-]+)", text)
    return m.group(1) if m and not m.group(1).isdigit() else None


def draft_request(text: str) -> dict[str, Any] | None:
    """The job a line describes: a command in backticks, plus the metric and trial budget named in words."""
    m = re.search(r"`([^`]+)`", text)
    if not m:
        return None
    try:
        argv = shlex.split(m.group(1))
    except ValueError:
        return None
    rest = text[: m.start()] + text[m.end():]
    req: dict[str, Any] = {"argv": argv}
    metric = re.search(r"\b(?:metric|maximi[sz]e|minimi[sz]e|for|by)\s+[\"'`]?([A-Za-z_][\w.-]*)", rest, re.I)
    if metric and metric.group(1).lower() not in ("wall", "time", "speed", "it", "the", "a", "me", "trials"):
        req["metric"] = metric.group(1)
    trials = re.search(r"(\d+)\s*trials?\b|\btrials?\s*[:=]?\s*(\d+)", rest, re.I)
    if trials:
        req["trials"] = int(trials.group(1) or trials.group(2))
    return req


def recognise(text: str, *, pending: bool = False) -> Intent:
    """The intent of one chat line; ``pending`` says whether a drafted job awaits the user's yes."""
    t = text.strip()
    low = t.lower().rstrip("?!. ")
    study = _study_named(t)
    base = {"study": study} if study else {}
    if low in ("quit", "exit", "bye", "q", ":q"):
        return Intent("quit")
    if low in ("help", "?", "h", "what can you do"):
        return Intent("help")
    if _YES.match(t):  # with no draft waiting, the session says so
        return Intent("approve")
    if _NO.match(t):
        return Intent("decline")
    if pending and low in ("reload", "reload it", "i edited it", "edited"):
        return Intent("reload")
    req = draft_request(t)
    if req is not None:
        return Intent("draft", req)
    if pending and (m := re.match(r"^(?:set\s+)?(trials|repeats)\s*[:=]?\s*(\d+)$", low)):
        return Intent("edit", {"field": m.group(1), "value": int(m.group(2))})
    if pending and (m := re.match(r"^(?:set\s+)?values\s+(?:of\s+)?([a-z_]\w*)\s*[:=]?\s*(.+)$", low)):
        return Intent("edit", {"field": "values", "param": m.group(1), "value": m.group(2)})
    if m := re.search(rf"\bcompare\s+(?:trials?\s+)?{_NUM}\s*(?:and|with|to|vs\.?|,)?\s*(?:trial\s+)?{_NUM}", low):
        return Intent("compare", {**base, "a": int(m.group(1)), "b": int(m.group(2))})
    if low.startswith("why") or low.startswith("how come"):
        if m := re.search(rf"\btrial\s+{_NUM}|#(\d+)", low):
            return Intent("why", {**base, "trial": int(m.group(1) or m.group(2))})
        if m := re.search(r"\b([a-z_][\w-]*)\s*[= ]\s*(-?[\d.]+|true|false|on|off)\b", low.removeprefix("why").strip()):
            return Intent("why", {**base, "param": m.group(1), "value": m.group(2)})
        return Intent("why", base)
    if m := re.search(r"(?:\btrial\s*#?|#)(\d+)", low):
        return Intent("show", {**base, "trial": int(m.group(1))})
    if re.search(r"\b(best|winner|fastest|optimal)\b", low):
        return Intent("best", base)
    if re.search(r"\b(status|progress|how is it going|how did it go|summary|result)\b", low):
        return Intent("status", base)
    if re.search(r"\b(list|studies|what have i run)\b", low):
        return Intent("list", base)
    return Intent("open", base)
