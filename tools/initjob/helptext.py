"""A program's ``--help``: run it (contained, with a short timeout) and read the options it documents.

The knowledge layer's rule-based extractor (``tunesmith.knowledge.manuals.params.extract_flags``) reads
``--flag VALUE   text (default: X)`` lines; a small parser here also reads what it does not: aliases
(``-n N, --num N``), descriptions on the next line, and argparse's ``{a,b,c}`` choice lists.
"""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .command import number

_ALIAS = r"(?:-\w|--[\w.-]+)(?:[ =](?:\{[^}]*\}|[A-Z][A-Z0-9_]*|<[^>]+>|\[[^\]]+\]))?"
_OPTION = re.compile(rf"^\s{{1,10}}({_ALIAS}(?:,\s*{_ALIAS})*)(?:\s{{2,}}(\S.*))?\s*$")
_DEFAULT = re.compile(r"\(default:?\s*([^)]*)\)|\bdefaults? (?:is|to)\s+([\w.+-]+)", re.I)
_RANGE = re.compile(r"(?:range|between|from)\s*:?\s*\[?(-?\d+(?:\.\d+)?)\s*(?:-|–|to|and|,|\.\.)\s*(-?\d+(?:\.\d+)?)", re.I)


@dataclass
class HelpOption:
    """One option ``--help`` documents: its spellings, whether it takes a value, default, choices, range."""

    flags: list[str]
    takes_value: bool
    description: str = ""
    default: Any = None
    choices: list[str] = field(default_factory=list)
    low: float | None = None
    high: float | None = None


def parse_help(text: str) -> list[HelpOption]:
    """The options of an argparse/GNU-style help text (continuation lines joined to their option)."""
    lines = text.splitlines()
    found: list[HelpOption] = []
    for i, line in enumerate(lines):
        m = _OPTION.match(line)
        if not m:
            continue
        desc = [m.group(2) or ""]
        indent = len(line) - len(line.lstrip())
        for nxt in lines[i + 1:]:
            if not nxt.strip() or _OPTION.match(nxt) or len(nxt) - len(nxt.lstrip()) <= indent:
                break
            desc.append(nxt.strip())
        text_ = " ".join(" ".join(desc).split())
        aliases = [a.strip() for a in re.split(r",\s*(?=-)", m.group(1))]
        flags = [re.split(r"[ =]", a, maxsplit=1)[0] for a in aliases]
        metas = [re.split(r"[ =]", a, maxsplit=1)[1] for a in aliases if re.search(r"[ =]", a)]
        opt = HelpOption(flags=flags, takes_value=bool(metas), description=text_)
        brace = next((mv for mv in metas if mv.startswith("{")), None)
        if brace:
            opt.choices = [c.strip() for c in brace.strip("{}").split(",") if c.strip()]
        d = _DEFAULT.search(text_)
        if d:
            raw = (d.group(1) if d.group(1) is not None else d.group(2)).strip().strip("\"'")
            opt.default = number(raw) if number(raw) is not None else raw
        r = _RANGE.search(text_)
        if r:
            opt.low, opt.high = float(r.group(1)), float(r.group(2))
        found.append(opt)
    return found


def enrich_with_manuals(text: str, source: str, options: list[HelpOption]) -> list[HelpOption]:
    """Add what the knowledge layer's extractor reads that the small parser missed (where it is installed)."""
    try:
        from tunesmith.knowledge.manuals.documents import help_document
        from tunesmith.knowledge.manuals.params import extract_flags
    except ImportError:
        return options
    by_flag = {f: o for o in options for f in o.flags}
    for p in extract_flags(help_document(text, source, f"$ {source} --help")):
        flag = "--" + p.name
        opt = by_flag.get(flag)
        if opt is None:
            opt = HelpOption([flag], takes_value=p.type != "bool", description=p.description)
            options.append(opt)
            by_flag[flag] = opt
        if opt.default is None and p.default is not None:
            opt.default = number(p.default) if number(p.default) is not None else p.default
        opt.choices = opt.choices or list(p.choices)
        if opt.low is None and p.low is not None:
            opt.low, opt.high = p.low, p.high
    return options


def program_prefix(argv: list[str]) -> list[str]:
    """The part of the command that names the program: ``prog``, or ``python [flags] script.py``."""
    if re.fullmatch(r"python[0-9.]*", Path(argv[0]).name):
        for i, tok in enumerate(argv[1:], start=1):
            if tok == "-m" and i + 1 < len(argv):
                return argv[: i + 2]
            if not tok.startswith("-"):
                return argv[: i + 1]
    return argv[:1]


def read_help(argv: list[str], cwd: Path, timeout_s: float = 10.0) -> str:
    """The program's ``--help`` output, run like a workload (contained, time- and memory-limited); "" if none."""
    from tunesmith.runners.base import RunSpec
    from tunesmith.runners.local import LocalRunner

    command = [*program_prefix(argv), "--help"]
    with tempfile.TemporaryDirectory(prefix="tunesmith-help-") as tmp:
        spec = RunSpec(argv=[sys.executable, "-m", "tunesmith.tools.initjob.wrap", "--raw", "--cwd", str(cwd), "--",
                             *command], cwd=Path(tmp), timeout_s=timeout_s, memory_mb=2048)
        runner = LocalRunner()
        try:
            res = runner.run(spec)
        finally:
            runner.close()
    if res.launch_error or res.timed_out or res.returncode not in (0, 1, 2):
        return ""
    text = res.stdout_tail if res.stdout_tail.strip() else res.stderr_tail
    return text if re.search(r"(^|\s)--?\w", text) else ""
