"""Reading manuals into sections of numbered lines: man pages, Markdown, HTML, PDF, plain text, help output.

A ``Document`` is a source name, its kind, where it came from and its sections; each section keeps its
title and the lines under it with their line numbers in the text that was read (for a man page, the
rendered page; for a PDF, ``page:line``), so every chunk and every extracted parameter can cite a place.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from tunesmith.runners.errors import TunesmithError

_OVERSTRIKE = re.compile(r".\x08")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ManualError(TunesmithError):
    """A manual could not be read (missing, empty, unreadable, a command that failed)."""

    exit_code = 2


@dataclass
class Section:
    """A titled run of lines; ``lines`` are (line number, text)."""

    title: str
    lines: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Document:
    """One manual, read: its source name, kind (man, markdown, html, pdf, text, help), origin and sections."""

    source: str
    kind: str
    origin: str
    sections: list[Section]

    @property
    def text(self) -> str:
        return "\n".join(t for s in self.sections for _, t in s.lines)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.kind}\n{self.text}".encode()).hexdigest()[:16]

    def line_map(self) -> dict[int, str]:
        """Line number -> text, over every section."""
        return {n: t for s in self.sections for n, t in s.lines}


# -- plain text with headings ----------------------------------------------------------------------------
_HEADING = re.compile(r"^(?:[A-Z][A-Z0-9 /&()-]{1,60}:?|[A-Z][\w /&()-]{0,60}:)\s*$")


def sections_of_text(lines: list[str], first: int = 1, *, indented_headings: bool = False) -> list[Section]:
    """Split text at headings: an unindented ALL-CAPS line or a short line ending with ':' (help output,
    rendered man pages); with ``indented_headings`` a short indented line of capitals (juicefs' option groups) too."""
    sections = [Section("(top)")]
    for n, raw in enumerate(lines, start=first):
        line = raw.rstrip()
        stripped = line.strip()
        head = bool(stripped) and (line == stripped or (indented_headings and stripped.isupper() and len(stripped) < 40)
                                   or re.match(r"^ {1,4}\S.*:$", line) is not None and len(stripped) < 50)
        if head and _HEADING.match(stripped) and not stripped.startswith(("-", "Option:", "Default Value:", "Description:")):
            sections.append(Section(stripped.rstrip(":").strip()))
            continue
        sections[-1].lines.append((n, line))
    return [s for s in sections if any(t.strip() for _, t in s.lines)]


_HELP_LINE = re.compile(r"^\s+(-\w, )?--[a-z]|^Option: \S")


def read_text(path: Path, source: str, kind: str = "text") -> Document:
    """Plain text; saved help output (five or more ``--flag`` or ``Option:`` lines) is read as help."""
    text = _read(path)
    if sum(1 for line in text.splitlines() if _HELP_LINE.match(line)) >= 5:
        return help_document(text, source, str(path))
    return Document(source, kind, str(path), sections_of_text(text.splitlines()))


# -- Markdown --------------------------------------------------------------------------------------------
def read_markdown(path: Path, source: str) -> Document:
    """Sections at ``#`` headings (the title path joined with ' > '); fenced code stays in its section."""
    sections, trail, fenced = [Section("(top)")], [], False
    for n, line in enumerate(_read(path).splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            level = len(m.group(1))
            trail = trail[: level - 1] + [m.group(2)]
            sections.append(Section(" > ".join(trail)))
        else:
            sections[-1].lines.append((n, line))
    return Document(source, "markdown", str(path), [s for s in sections if any(t.strip() for _, t in s.lines)])


# -- HTML ------------------------------------------------------------------------------------------------
class _HTMLSections(HTMLParser):
    SKIP = {"script", "style", "nav", "head"}
    BLOCK = {"p", "div", "li", "tr", "br", "pre", "dt", "dd", "table", "ul", "ol", "section", "td", "th"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections = [Section("(top)")]
        self.skip = 0
        self.heading: list[str] | None = None
        self.buf: list[str] = []
        self.line = 1

    def _flush(self) -> None:
        text = " ".join("".join(self.buf).split())
        if text:
            self.sections[-1].lines.append((self.line, text))
        self.buf = []

    def handle_starttag(self, tag: str, attrs: list) -> None:  # type: ignore[type-arg]
        if tag in self.SKIP:
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.heading = []
        elif tag in self.BLOCK:
            self._flush()
            self.line = self.getpos()[0]
        elif tag == "td" or tag == "th":
            self.buf.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self.heading is not None:
            self.sections.append(Section(" ".join("".join(self.heading).split()) or "(untitled)"))
            self.heading = None
            self.line = self.getpos()[0]
        elif tag in self.BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.heading is not None:
            self.heading.append(data)
        else:
            if not "".join(self.buf).strip():
                self.line = self.getpos()[0]
            self.buf.append(data)


def read_html(path: Path, source: str) -> Document:
    """Text blocks under h1-h6 headings; each block keeps the HTML line it starts on."""
    parser = _HTMLSections()
    parser.feed(_read(path))
    parser.close()
    parser._flush()
    return Document(source, "html", str(path), [s for s in parser.sections if s.lines])


# -- PDF -------------------------------------------------------------------------------------------------
def read_pdf(path: Path, source: str) -> Document:
    """One section per page (``page N``); line numbers count from 1 within the whole extracted text."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [p.extract_text() or "" for p in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise ManualError(f"{path}: not a readable PDF ({type(exc).__name__}: {str(exc)[:80]})",
                          "check the file, or convert it to text first") from None
    sections, n = [], 1
    for i, text in enumerate(pages, start=1):
        lines = text.splitlines()
        sections.append(Section(f"page {i}", [(n + j, t) for j, t in enumerate(lines)]))
        n += len(lines)
    return Document(source, "pdf", str(path), [s for s in sections if any(t.strip() for _, t in s.lines)])


# -- man pages -------------------------------------------------------------------------------------------
def render_man(path: Path) -> str:
    """The man page rendered as plain text (man or groff, no hyphenation), else parsed from its macros."""
    env = {**os.environ, "MANWIDTH": "100", "MANROFFOPT": "-rHY=0 -dAD=l", "MAN_KEEP_FORMATTING": ""}
    if shutil.which("man"):
        proc = subprocess.run(["man", "-l", str(path)], capture_output=True, env=env, timeout=60)
        if proc.returncode == 0 and proc.stdout.strip():
            return _ANSI.sub("", _OVERSTRIKE.sub("", proc.stdout.decode("utf-8", "replace")))
    return troff_to_text(_read(path))


def troff_to_text(src: str) -> str:
    """A small reading of man(7) macros: .SH/.SS headings, .TP/.IP items, .B/.I text; others dropped."""
    out: list[str] = []
    for line in src.splitlines():
        line = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\e", lambda m: "\\" if m.group() == "\\e" else "", line)
        line = line.replace("\\-", "-").replace('\\"', "")
        if line.startswith(('.\\"', "'\\\"")):
            continue
        m = re.match(r"^\.(SH|SS)\s*(.*)$", line)
        if m:
            out += ["", m.group(2).strip('"').upper() if m.group(1) == "SH" else "   " + m.group(2).strip('"') + ":"]
            continue
        m = re.match(r"^\.(B|I|BI|IB|BR|RB|IR|RI)\s+(.*)$", line)
        if m:
            out.append("       " + " ".join(p.strip('"') for p in re.findall(r'"[^"]*"|\S+', m.group(2))))
            continue
        if re.match(r"^\.(PP|LP|P|TP|IP|br|sp)\b", line):
            out.append("")
            continue
        if line.startswith("."):
            continue
        out.append("       " + line)
    return "\n".join(out)


def read_man(path: Path, source: str) -> Document:
    lines = render_man(path).splitlines()
    return Document(source, "man", str(path), sections_of_text(lines))


def find_man(name: str) -> Path:
    """The installed man page file for NAME (``man -w``)."""
    if shutil.which("man") is None:
        raise ManualError("the man command is not installed", "ingest the page's file instead")
    proc = subprocess.run(["man", "-w", name], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ManualError(f"no man page named {name!r} is installed", "check `man -k NAME`, or ingest the file")
    return Path(proc.stdout.split()[0])


# -- command help --------------------------------------------------------------------------------------
def read_help(command: str, source: str | None = None, timeout: float = 60) -> Document:
    """The output of a help command such as ``juicefs mount --help`` or ``gluster volume set help``."""
    import shlex

    argv = shlex.split(command)
    if not argv or shutil.which(argv[0]) is None:
        raise ManualError(f"--help-of {command!r}: {argv[0] if argv else 'nothing'} is not on PATH",
                          "install it or give the full path")
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ManualError(f"--help-of {command!r} did not finish in {timeout:g} s", "check that the command prints help") from None
    text = (proc.stdout or proc.stderr).decode("utf-8", "replace")
    if not text.strip() or (proc.returncode != 0 and len(text.splitlines()) < 10):
        said = f": {text.strip().splitlines()[0][:120]}" if text.strip() else ""
        raise ManualError(f"--help-of {command!r} failed (exit {proc.returncode}){said}",
                          "check the command (a daemon it needs may be down)")
    return help_document(text, source or help_source(command), f"$ {command}")


def help_document(text: str, source: str, origin: str) -> Document:
    return Document(source, "help", origin, sections_of_text(_ANSI.sub("", text).splitlines(), indented_headings=True))


def help_source(command: str) -> str:
    """A source name for a help command: its words without help flags, joined by '-'."""
    words = [w for w in command.split() if w not in ("--help", "-h", "help", "--usage")]
    return "-".join(Path(words[0]).name if i == 0 else w for i, w in enumerate(words)) or "help"


# -- dispatch ------------------------------------------------------------------------------------------
def _read(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if b"\x00" in data[:4096]:
        raise ManualError(f"{path}: binary data, not a manual", "pass a text, Markdown, HTML, man or PDF file")
    return data.decode("utf-8", "replace")


def source_name(path: Path) -> str:
    """A manual's source name from its file name: without .gz, a man section or a document suffix."""
    name = path.name.removesuffix(".gz")
    name = re.sub(r"\.(md|markdown|html?|txt|pdf|rst|[1-9][a-z]*)$", "", name)
    return name or path.name


def read_document(path: Path, source: str | None = None) -> Document:
    """Read ``path`` by its type (man, Markdown, HTML, PDF, else text); ManualError when it cannot be read."""
    if not path.exists():
        raise ManualError(f"{path}: no such file", "check the path")
    if path.is_dir():
        raise ManualError(f"{path}: is a folder", "pass the files inside it")
    name = source or source_name(path)
    suffix = path.name.removesuffix(".gz").rsplit(".", 1)[-1].lower() if "." in path.name else ""
    try:
        if suffix == "pdf":
            doc = read_pdf(path, name)
        elif suffix in ("md", "markdown"):
            doc = read_markdown(path, name)
        elif suffix in ("html", "htm"):
            doc = read_html(path, name)
        elif re.fullmatch(r"[1-9][a-z]*", suffix) or _read(path).lstrip().startswith(('.TH', '.\\"')):
            doc = read_man(path, name)
        else:
            doc = read_text(path, name)
    except (OSError, UnicodeError, gzip.BadGzipFile, subprocess.SubprocessError) as exc:
        raise ManualError(f"{path}: cannot be read ({type(exc).__name__}: {str(exc)[:100]})", "check the file") from None
    if not doc.sections:
        raise ManualError(f"{path}: no text found", "check that it is a manual")
    return doc
