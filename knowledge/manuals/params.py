"""Tunable parameters read out of a manual, each with the citation that supports it.

Rule-based extraction (no LLM) knows the common shapes: gluster's ``Option: / Default Value: /
Description:`` listing, ``--flag VALUE  text (default: X)`` help output, man-page option items (``name``
or ``name=N`` with an indented description), ``name = value`` lists and option tables (Markdown or HTML
rows with a name and a default column). ``verify`` is the anti-hallucination step every LLM-extracted
parameter passes: its name, default, range ends and choices must appear literally in the cited lines.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from .documents import Document

Scope = Literal["per-file", "per-directory", "per-client", "global", "unknown"]
ParamType = Literal["bool", "int", "float", "size", "duration", "percent", "choice", "string"]


class ManualParam(BaseModel):
    """One parameter a manual documents, and where: ``line``..``line_end`` of ``source`` (chunk ``chunk``)."""

    name: str
    type: ParamType = "string"
    default: str | None = None
    low: float | None = None
    high: float | None = None
    choices: list[str] = Field(default_factory=list)
    unit: str | None = None
    scope: Scope = "unknown"
    apply: str = ""
    needs_root: bool = False
    description: str = ""
    source: str = ""
    line: int = 0
    line_end: int = 0
    chunk: str = ""
    quote: str = ""
    extractor: str = "rules"


_SKIP_SECTIONS = re.compile(r"^(name|synopsis|definitions?|see also|authors?|security|examples?|bugs|"
                            r"history|notes?|exit status|copyright|reporting bugs|usage|category|\(top\) header)$", re.I)
_DEFAULT = re.compile(r"""(?:\(default:?\s*|\bdefault(?: value)? is\s+|\bdefaults to\s+|\bDefault(?: Value)?:\s*|"""
                      r"""\bDefault is\s+)("[^"]*"|'[^']*'|[\w.+/:%-]+)""", re.I)
_SIZE = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B?|[kmgt]b?|B)$")
_DURATION = re.compile(r"^\d+(\.\d+)?(ns|us|ms|s|m|h|d)$")
_ROOT = re.compile(r"privileged option|must be run as root|requires? (root|privilege)|only .*privileged user|"
                   r"CAP_SYS_ADMIN|as root only|needs root", re.I)
_NOT_VALUE = {"the", "a", "an", "to", "is", "not", "that", "this", "determined", "value", "set"}


def default_in(text: str) -> str | None:
    """The literal default a text states (``(default: "1h")``, ``The default is 512.``), without quotes."""
    m = _DEFAULT.search(text)
    if not m:
        return None
    value = m.group(1).strip("\"'").rstrip(".,;)")
    if not value and m.group(1) in ('""', "''"):
        return ""
    return None if value.lower() in _NOT_VALUE else value


def infer_type(default: str | None, flag_only: bool = False, placeholder: str = "") -> ParamType:
    """The parameter's type from its default's shape and its value placeholder (``N``, ``T``)."""
    if flag_only:
        return "bool"
    d = (default or "").strip().lower()
    if d in ("on", "off", "true", "false", "enable", "disable", "yes", "no"):
        return "bool"
    if re.fullmatch(r"-?\d+", d):
        return "int"
    if re.fullmatch(r"-?\d+\.\d*|-?\.\d+", d):
        return "float"
    if d.endswith("%") and re.fullmatch(r"\d+(\.\d+)?%", d):
        return "percent"
    if _SIZE.match(default or ""):
        return "size"
    if _DURATION.match(d):
        return "duration"
    if placeholder in ("N", "NNN", "NUM"):
        return "int"
    if placeholder == "T":
        return "float"
    return "string"


def choices_in(text: str) -> list[str]:
    """Choices a description lists: ``[none, 2-random, lru]``, ``(none, full, shrink)``, ``includes: a, b, c``."""
    for pat in (r"\[([\w.-]+(?:\s*[,|]\s*[\w.-]+)+)\]", r"\(([\w.-]+(?:\s*,\s*[\w.-]+){2,})\)",
                r"(?:includes|values are|one of|possible values(?: are)?)\s*:?\s*([\w.-]+(?:\s*,\s*[\w.-]+)+)"):
        m = re.search(pat, text, re.I)
        if m:
            return [c.strip() for c in re.split(r"[,|]", m.group(1)) if c.strip()]
    return []


def range_in(text: str) -> tuple[float | None, float | None]:
    """A numeric range a text states: ``range 1-64``, ``between 4 and 1024``, ``Minimum value is 1, maximum value is 64``."""
    m = re.search(r"\brange(?: is| of)?\s*:?\s*\[?(-?\d+(?:\.\d+)?)\s*(?:-|–|to|\.\.|,)\s*(-?\d+(?:\.\d+)?)", text, re.I) \
        or re.search(r"\bbetween (-?\d+(?:\.\d+)?) and (-?\d+(?:\.\d+)?)", text, re.I) \
        or re.search(r"minimum(?: value)? is (-?\d+(?:\.\d+)?)\W+maximum(?: value)? is (-?\d+(?:\.\d+)?)", text, re.I)
    return (float(m.group(1)), float(m.group(2))) if m else (None, None)


def _param(doc: Document, name: str, lines: list[tuple[int, str]], *, flag_only: bool = False, placeholder: str = "",
           scope: Scope = "unknown", apply: str = "", root: bool = False) -> ManualParam:
    quote = "\n".join(t for _, t in lines).strip()
    desc = " ".join(quote.split())
    default = default_in(desc)
    low, high = range_in(desc)
    choices = [] if flag_only else choices_in(desc)
    kind = infer_type(default, flag_only, placeholder)
    if choices and kind in ("string",):
        kind = "choice"
    unit = next((u for u in ("MiB", "Mbps", "seconds", "second", "bytes", "KB", "MB") if re.search(rf"\b{u}\b", desc)), None)
    return ManualParam(name=name, type=kind, default=default, low=low, high=high, choices=choices, unit=unit,
                       scope=scope, apply=apply, needs_root=root or bool(_ROOT.search(desc)), description=desc[:400],
                       source=doc.source, line=lines[0][0], line_end=lines[-1][0], quote=quote)


def _command_of(doc: Document) -> str:
    """The command a help text documents: from ``$ CMD --help``, else guessed from the source name."""
    if doc.origin.startswith("$ "):
        return " ".join(w for w in doc.origin[2:].split() if w not in ("--help", "-h", "help"))
    return doc.source.removesuffix("-help").replace("-", " ")


def _scope_for(doc: Document) -> Scope:
    where = f"{doc.source} {doc.origin}".lower()
    if "gluster" in where:
        return "global"
    if "mount" in where or "fuse" in where:
        return "per-client"
    if "romio" in where or "mpi" in where:
        return "per-file"
    return "unknown"


def extract_gluster(doc: Document) -> list[ManualParam]:
    """gluster's ``Option: NAME`` / ``Default Value: X`` / ``Description: ...`` blocks."""
    lines = [(n, t) for s in doc.sections for n, t in s.lines]
    out = []
    for i, (_, t) in enumerate(lines):
        m = re.match(r"^Option:\s*(\S+)\s*$", t)
        if not m:
            continue
        block = [lines[i]]
        for n2, t2 in lines[i + 1:]:
            if not t2.strip() or t2.startswith("Option:"):
                break
            block.append((n2, t2))
        p = _param(doc, m.group(1), block, scope="global", root=True,
                   apply=f"gluster volume set VOLNAME {m.group(1)} VALUE")
        dv = next((re.sub(r"^Default Value:\s*", "", t2).strip() for _, t2 in block if t2.startswith("Default Value:")), None)
        p.default = None if dv in (None, "(null)", "") else dv
        p.type = infer_type(p.default) if not p.choices else "choice"
        out.append(p)
    return out


_FLAG = re.compile(r"^\s+(?:-\w,\s+)?--([a-z0-9][\w.-]*)(?:[ =](value|VALUE|<[^>]+>|[A-Z][A-Z_]*|[\w‑-]+))?\s{2,}(\S.*)$")


def extract_flags(doc: Document) -> list[ManualParam]:
    """``--flag VALUE   description (default: X)`` lines of help output (continuation lines joined)."""
    out, command = [], _command_of(doc)
    for s in doc.sections:
        for i, (n, t) in enumerate(s.lines):
            m = _FLAG.match(t)
            if not m:
                continue
            block = [(n, t)]
            indent = len(t) - len(t.lstrip()) + 4
            for n2, t2 in s.lines[i + 1:]:
                if t2.strip() and len(t2) - len(t2.lstrip()) >= indent and not _FLAG.match(t2):
                    block.append((n2, t2))
                else:
                    break
            value = m.group(2)
            p = _param(doc, m.group(1), block, flag_only=value is None, placeholder=value or "", scope=_scope_for(doc),
                       apply=f"{command} --{m.group(1)}" + (" VALUE" if value else ""))
            p.description = " ".join(" ".join(t for _, t in block).split()).split(m.group(1), 1)[-1].strip()[:400]
            out.append(p)
    return out


_ITEM = re.compile(r"^(?P<ind>\s{4,8})(?P<name>[a-z_][\w.-]*)(?:(?P<eq>\s?=\s?)(?P<ph>[A-Z][\w:\[\].]*|\d+))?"
                   r"(?:\s+(?P<rest>\S.*))?$")


_VALUES_INTRO = re.compile(r"(symbols?|values?) (may|can) be( one of)?:\s*$|values are:\s*$", re.I)
_OPTIONS_INTRO = re.compile(r"(options|parameters|operands|hints) (are|include)\b[^:]*:\s*$", re.I)


def extract_items(doc: Document) -> list[ManualParam]:
    """Man-page and text option items: ``name`` or ``name=N`` at an indent, described on deeper lines."""
    out = []
    for s in doc.sections:
        if _SKIP_SECTIONS.match(s.title.strip()) or s.title == "(top)":
            continue
        values_list = False  # after "Each FLAG symbol may be:" the items are values of a parameter, not parameters
        for i, (n, t) in enumerate(s.lines):
            m = _ITEM.match(t)
            if _VALUES_INTRO.search(t):
                values_list = True
            elif _OPTIONS_INTRO.search(t):
                values_list = False
            if not m or values_list:
                continue
            ind = len(m.group("ind"))
            nxt = next(((n2, t2) for n2, t2 in s.lines[i + 1:] if t2.strip()), None)
            deeper = nxt is not None and len(nxt[1]) - len(nxt[1].lstrip()) > ind
            rest = m.group("rest")
            inline = rest is not None and t.find(rest) - ind >= 4 and rest[:1].isupper()  # a man .TP tag beside its text
            if rest is not None and not inline:
                continue
            if rest is None and not deeper and not m.group("eq"):
                continue
            block = [(n, t)]
            for n2, t2 in s.lines[i + 1:]:
                if not t2.strip() or len(t2) - len(t2.lstrip()) <= ind:
                    break
                block.append((n2, t2))
            name, ph = m.group("name"), m.group("ph") or ""
            apply = f"mount -o {name}" + ("=VALUE" if m.group("eq") else "") if doc.kind == "man" and "mount" in doc.source \
                else f"{name}" + ("=VALUE" if m.group("eq") else "")
            out.append(_param(doc, name, block, flag_only=not m.group("eq"), placeholder=ph, scope=_scope_for(doc),
                              apply=apply))
    return out


def extract_tables(doc: Document) -> list[ManualParam]:
    """Rows of a table whose header names a parameter column and a default column (``|``-separated)."""
    out = []
    for s in doc.sections:
        header: list[str] | None = None
        for n, t in s.lines:
            cells = [c.strip() for c in t.strip().strip("|").split("|")]
            if len(cells) < 2 or "|" not in t:
                header = None if "|" not in t else header
                continue
            low = [c.lower() for c in cells]
            if header is None and any(w in low[0] for w in ("name", "option", "hint", "parameter", "key")):
                header = low
                continue
            if header is None or set(t.strip()) <= set("|-: "):
                continue
            name = cells[0].strip("`* ")
            if not re.fullmatch(r"[A-Za-z_][\w.-]*", name):
                continue
            p = _param(doc, name, [(n, t)], scope=_scope_for(doc), apply=f"{name}=VALUE")
            col = next((i for i, h in enumerate(header) if "default" in h), None)
            if col is not None and col < len(cells) and cells[col].strip("` "):
                p.default = cells[col].strip("` ")
                p.type = infer_type(p.default)
            out.append(p)
    return out


def extract_rules(doc: Document) -> list[ManualParam]:
    """Every rule-based extractor over ``doc``; the first entry for a name wins (in the document's order)."""
    found: dict[str, ManualParam] = {}
    for extractor in (extract_gluster, extract_flags, extract_tables, extract_items):
        for p in extractor(doc):
            found.setdefault(p.name, p)
    return sorted(found.values(), key=lambda p: p.line)


def verify(p: ManualParam, doc: Document) -> list[str]:
    """Why ``p`` is not supported by its cited lines (empty when it is): name, default, range, choices literally."""
    lines = doc.line_map()
    if p.line <= 0 or p.line not in lines:
        return [f"cited line {p.line} is not in {doc.source}"]
    end = max(p.line, p.line_end or p.line)
    if end - p.line > 40:
        return [f"cited range {p.line}-{end} is too long to support one parameter"]
    cited = "\n".join(lines.get(n, "") for n in range(p.line, end + 1))
    flat = " ".join(cited.split())
    problems = []
    if not re.search(rf"(?:(?<=--)|(?<![\w.-])){re.escape(p.name)}(?![\w-])", flat):
        problems.append(f"name {p.name!r} does not appear in lines {p.line}-{end}")
    if p.default not in (None, "") and not _literal(p.default, flat):
        problems.append(f"default {p.default!r} does not appear in lines {p.line}-{end}")
    for label, v in (("low", p.low), ("high", p.high)):
        if v is not None and not any(_literal(form, flat) for form in _number_forms(v)):
            problems.append(f"{label} {v:g} does not appear in lines {p.line}-{end}")
    for c in p.choices:
        if not _literal(c, flat):
            problems.append(f"choice {c!r} does not appear in lines {p.line}-{end}")
    return problems


def _literal(value: str, text: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(str(value))}(?![\w])", text, re.I) is not None


def _number_forms(v: float) -> list[str]:
    return [f"{v:g}", str(int(v))] if float(v).is_integer() else [f"{v:g}", str(v)]
