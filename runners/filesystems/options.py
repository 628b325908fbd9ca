"""The tunable options of GlusterFS and JuiceFS, read from their own help output and turned into Params.

``gluster volume set help`` prints blocks of ``Option:`` / ``Default Value:`` / ``Description:``;
``juicefs mount --help`` prints ``--name value   text (default: "X")`` lines under category headings.
Both are parsed here (a small parser of these two formats: the knowledge package's manual extraction
had not landed when this was written). Each option keeps the quoted help text as its ``Source``; an option
becomes a ``Param`` only where its type and a range can be read from the text (on/off, a number with
stated bounds, a size), with ``apply = "setting"`` and the ``setting`` that applies it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from ..space import Param, Source

_SIZE = re.compile(r"^(\d+)\s*([KMG]i?B?|[KMG])?$", re.IGNORECASE)
_BOUNDS = re.compile(r"[Mm]inimum value is (\d+),? (?:and )?[Mm]aximum value is (\d+)")
_JFS_LINE = re.compile(r"^\s{2,}(?:-\w, )?--([a-z0-9\-]+)(?: (\S+))?\s{2,}(.*)$")
_JFS_DEFAULT = re.compile(r'\(default: "?([^")]*)"?\)\s*$')


@dataclass(frozen=True)
class OptionDoc:
    """One documented option: its name, default text, description, category and where it came from."""

    name: str
    default: str
    description: str
    ref: str
    takes_value: bool = True
    category: str = ""


def parse_gluster_help(text: str) -> list[OptionDoc]:
    """Every option block of ``gluster volume set help``."""
    out: list[OptionDoc] = []
    for block in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(Option|Default Value|Description):[ \t]*(.*)$", block, re.MULTILINE))
        if fields.get("Option"):
            out.append(OptionDoc(fields["Option"].strip(), fields.get("Default Value", "").strip(),
                                 fields.get("Description", "").strip(), "gluster volume set help"))
    return out


def parse_juicefs_help(text: str) -> list[OptionDoc]:
    """Every ``--option`` of ``juicefs mount --help`` with its category heading (FUSE, META, DATA CACHE ...)."""
    out: list[OptionDoc] = []
    category = ""
    for line in text.splitlines():
        if re.fullmatch(r"\s{3}[A-Z][A-Z ]+", line):
            category = line.strip()
            continue
        m = _JFS_LINE.match(line)
        if not m:
            continue
        name, arg, description = m.group(1), m.group(2), m.group(3).strip()
        d = _JFS_DEFAULT.search(description)
        default = d.group(1) if d else ""
        takes_value = arg is not None
        out.append(OptionDoc(name, default if takes_value else (default or "false"), description,
                             "juicefs mount --help", takes_value, category))
    return out


def size_bytes(text: str) -> int | None:
    """Bytes of a size written ``1MB``, ``128KB``, ``300M``, ``4096``; None if it is not one."""
    m = _SIZE.match(text.strip())
    if not m:
        return None
    unit = (m.group(2) or "").upper()[:1]
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]


def _size_choices(default: str, unit_text: str) -> tuple[str, ...]:
    base = size_bytes(default) or 0
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit_text[0]]
    values = sorted({max(base // 4, scale), base, base * 4})
    return tuple(f"{v // scale}{unit_text}" for v in values)


def to_param(doc: OptionDoc, setting_prefix: str) -> Param | None:
    """A Param for ``doc`` where its type and range can be read from the help text; None otherwise.

    ``setting_prefix`` is what names the place it applies (``gluster:VOLUME`` or ``juicefs:/MOUNT``).
    """
    source = Source(kind="manual", ref=doc.ref, quote=doc.description[:300])
    common = {"name": re.sub(r"[^A-Za-z0-9_]", "_", doc.name), "apply": "setting", "source": source,
              "setting": f"{setting_prefix}:{doc.name}", "help": doc.description[:200]}
    default = doc.default.strip().lower()
    if not doc.takes_value or default in ("on", "off", "true", "false", "yes", "no", "enable", "disable"):
        return Param(kind="bool", default=default in ("on", "true", "yes", "enable"), **common)
    bounds = _BOUNDS.search(doc.description)
    if default.isdigit():
        value = int(default)
        low, high = (int(bounds.group(1)), int(bounds.group(2))) if bounds else (max(value // 4, 0), max(value * 4, 1))
        if low <= value <= high:
            return Param(kind="int", default=value, low=low, high=high, **common)
        return None
    unit = re.match(r"^\d+\s*([KMG])(i?B?)$", doc.default.strip(), re.IGNORECASE)
    if unit and size_bytes(doc.default):
        text_unit = unit.group(1).upper() + unit.group(2)
        choices = _size_choices(doc.default.strip(), text_unit)
        default_text = next(c for c in choices if size_bytes(c) == size_bytes(doc.default))
        return Param(kind="choice", default=default_text, values=choices, **common)
    return None


def help_text(argv: list[str]) -> str:
    """A tool's help output (``["gluster", "volume", "set", "help"]``, ``[juicefs, "mount", "--help"]``)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL).stdout


def gluster_params(text: str, volume: str, names: list[str] | None = None) -> list[Param]:
    """Params for a volume's options from ``gluster volume set help`` text (only ``names`` if given)."""
    docs = [d for d in parse_gluster_help(text) if names is None or d.name in names]
    return [p for p in (to_param(d, f"gluster:{volume}") for d in docs) if p is not None]


def juicefs_params(text: str, mountpoint: str, names: list[str] | None = None) -> list[Param]:
    """Params for a mount's options from ``juicefs mount --help`` text (only ``names`` if given)."""
    docs = [d for d in parse_juicefs_help(text) if names is None or d.name in names]
    return [p for p in (to_param(d, f"juicefs:{mountpoint}") for d in docs) if p is not None]
