"""Schema-constrained parameter extraction by an LLM, every answer checked against the text it cites.

The model sees the manual in numbered pieces and answers with ``Extraction`` (a pydantic schema). Each
parameter it names must cite its lines; ``params.verify`` then rejects any whose name, default, range ends
or choices do not appear literally in those lines. The LLM is any callable ``ask(messages, schema)`` that
returns a validated schema object (the agents' client's ``structured`` fits), so this layer needs no client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from .documents import Document
from .params import ManualParam, ParamType, Scope, verify

Ask = Callable[[list[dict[str, Any]], type[BaseModel]], BaseModel]
PIECE_CHARS = 3500


class ExtractedParam(BaseModel):
    """What the model must say about one parameter, with the lines that say it."""

    name: str = Field(description="the parameter's name exactly as the manual writes it")
    type: ParamType = "string"
    default: str | None = Field(None, description="the default exactly as written, or null when the text gives none")
    low: float | None = None
    high: float | None = None
    choices: list[str] = Field(default_factory=list)
    unit: str | None = None
    scope: Scope = "unknown"
    apply: str = Field("", description="how it is set: a command or API call")
    needs_root: bool = False
    description: str = ""
    line: int = Field(description="first line number that documents it")
    line_end: int = Field(description="last line number that documents it")


class Extraction(BaseModel):
    """The parameters documented in one piece of a manual."""

    params: list[ExtractedParam] = Field(default_factory=list)


SYSTEM = ("You read software manuals and list the tunable parameters they document. Use only what the numbered "
          "lines say: copy names and defaults exactly, give a range or choices only when the text states them, "
          "and cite the first and last line number that document each parameter. Never invent a parameter.")


def pieces(doc: Document, limit: int = PIECE_CHARS) -> list[str]:
    """The manual as numbered lines (``12| text``), cut into pieces of about ``limit`` characters."""
    out, cur = [], ""
    for s in doc.sections:
        block = f"## {s.title}\n" + "\n".join(f"{n}| {t}" for n, t in s.lines) + "\n"
        while len(block) > limit:  # a long section: cut at a line break
            cut = block.rfind("\n", 0, limit) + 1 or limit
            if cur:
                out.append(cur)
                cur = ""
            out.append(block[:cut])
            block = block[cut:]
        if len(cur) + len(block) > limit and cur:
            out.append(cur)
            cur = ""
        cur += block
    return out + ([cur] if cur.strip() else [])


def extract_with_llm(doc: Document, ask: Ask) -> tuple[list[ManualParam], list[tuple[ManualParam, list[str]]]]:
    """(accepted, rejected with reasons): every proposed parameter checked against its cited lines."""
    accepted: dict[str, ManualParam] = {}
    rejected: list[tuple[ManualParam, list[str]]] = []
    for piece in pieces(doc):
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Manual {doc.source} ({doc.kind}):\n{piece}\nList its parameters."}]
        answer = ask(messages, Extraction)
        for e in answer.params:  # type: ignore[attr-defined]
            p = ManualParam(**e.model_dump(), source=doc.source, extractor="llm")
            problems = verify(p, doc)
            if problems:
                rejected.append((p, problems))
                continue
            lines = doc.line_map()
            p.quote = "\n".join(lines.get(n, "") for n in range(p.line, p.line_end + 1)).strip()
            accepted.setdefault(p.name, p)
    return sorted(accepted.values(), key=lambda p: p.line), rejected
