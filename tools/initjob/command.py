"""Reading a command line a user already runs: which of its arguments are knobs and which stay fixed.

Numeric flags (``--threads 4``, ``--bs=64``, ``-n 8``) and on/off flags (``--fast``, ``--no-cache``) become
knobs; positional arguments and flags with non-numeric values stay as they are. Environment variables the
user names (``--env NAME=VALUE`` or ``--env NAME``, read from the environment) become knobs when their value
is a number or an on/off word, and are passed unchanged otherwise.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from tunesmith.runners.errors import TunesmithError
from tunesmith.runners.secrets import is_secret_name, redact

_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_LONG = re.compile(r"^--([A-Za-z0-9][\w.-]*)(=(.*))?$")
_SHORT = re.compile(r"^-([A-Za-z])$")
_ON_OFF = {"true": True, "false": False, "on": True, "off": False, "yes": True, "no": False}
RESERVED = ("out", "python")


class InitError(TunesmithError):
    """The command cannot be turned into a job (not found, nothing to tune, a metric it does not report)."""

    exit_code = 2


def number(text: str) -> int | float | None:
    """``text`` as an int or float, or None when it is not a plain number."""
    if not _NUMBER.match(text):
        return None
    value = float(text)
    return int(text) if re.fullmatch(r"-?\d+", text) else value


@dataclass
class Knob:
    """One tunable thing of the command: a flag's value, an on/off flag, or an environment variable."""

    name: str  # the job's parameter name (an identifier)
    flag: str  # as the user wrote it: "--threads", "-n", "--fast"; for env: the variable's name
    kind: str  # "int", "float" or "bool"
    value: Any  # the user's value (True for an on/off flag that was given)
    where: str = "arg"  # "arg" or "env"
    style: str = "space"  # "space" (--flag N), "equals" (--flag=N), "presence" (--flag)
    help: str = ""
    choices: list[Any] = field(default_factory=list)  # from --help, when it lists them
    low: float | None = None  # from --help, when it states a range
    high: float | None = None
    help_default: Any = None  # from --help
    from_help_only: bool = False  # offered by --help but not used in the command (written commented out)


@dataclass
class ParsedCommand:
    """The command as a template: ``template`` holds ``{name}`` placeholders where knobs go."""

    argv: list[str]
    template: list[str]
    knobs: list[Knob]
    env_fixed: dict[str, str] = field(default_factory=dict)
    pass_env: list[str] = field(default_factory=list)


def param_name(flag: str, taken: set[str]) -> str:
    """An identifier for ``flag`` (``--no-cache`` -> ``no_cache``) not already taken and not reserved."""
    base = re.sub(r"\W", "_", flag.lstrip("-")).lower() or "knob"
    if base[0].isdigit():
        base = "k_" + base
    name = base + "_value" if base in RESERVED else base
    i = 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def parse_command(argv: list[str], flag_only: set[str] = frozenset(), valued: set[str] = frozenset()) -> ParsedCommand:
    """Split ``argv`` into fixed arguments and knobs. ``flag_only``/``valued`` are flags ``--help`` says take
    no value / take a value (they settle ``--fast input.txt``: flag then positional, or flag with a value)."""
    if not argv:
        raise InitError("no command given", "write the command after `--`, e.g. `tune init -- python prog.py --threads 4`")
    template, knobs, taken = [argv[0]], [], set()
    i = 1
    while i < len(argv):
        tok = argv[i]
        long, short = _LONG.match(tok), _SHORT.match(tok)
        if tok == "--":  # everything after a bare -- is positional
            template += argv[i:]
            break
        if long and long.group(2) is not None:  # --bs=64
            value = number(long.group(3))
            if value is None:
                template.append(tok)
            else:
                name = param_name(long.group(1), taken)
                knobs.append(Knob(name, "--" + long.group(1), _kind(value), value, style="equals"))
                template.append(f"--{long.group(1)}={{{name}}}")
            i += 1
            continue
        if long or short:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            value = number(nxt) if nxt is not None and tok not in flag_only else None
            if value is None and (tok in flag_only or nxt is None or (nxt.startswith("-") and tok not in valued)):
                if long and re.fullmatch(r"--[a-z0-9]+(-[a-z0-9]+)*", tok):  # on/off flag given: a bool knob
                    name = param_name(long.group(1), taken)  # (the presence style writes --name back)
                    knobs.append(Knob(name, tok, "bool", True, style="presence"))
                    template.append(f"{{{name}}}")
                else:
                    template.append(tok)  # a short switch (-v) or --Odd_Case switch: kept as written
                i += 1
                continue
            if value is not None:  # --threads 4, -n 8
                name = param_name(tok, taken)
                knobs.append(Knob(name, tok, _kind(value), value))
                template += [tok, f"{{{name}}}"]
                i += 2
                continue
            template += [tok, str(nxt)]  # a flag with a non-numeric value (or `--flag positional`): fixed
            i += 2
            continue
        template.append(tok)  # positional: fixed
        i += 1
    for elem in template:
        if "{" in elem and not re.fullmatch(r"(--[\w.-]+=)?\{\w+\}", elem):
            raise InitError(f"argument {elem!r} holds braces, which the job file reserves for placeholders",
                            "write the job file by hand for this command (see examples/)")
    return ParsedCommand(list(argv), template, knobs)


def add_env(parsed: ParsedCommand, specs: list[str], environ: dict[str, str] | None = None) -> None:
    """Add ``--env NAME=VALUE`` / ``--env NAME`` items: numbers and on/off words become knobs."""
    environ = dict(os.environ) if environ is None else environ
    taken = {k.name for k in parsed.knobs}
    for spec in specs:
        name, eq, value = spec.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise InitError(f"--env {spec!r}: {name!r} is not a variable name", "use --env NAME=VALUE or --env NAME")
        if not eq:
            if name not in environ:
                raise InitError(f"--env {name}: the variable is not set here", f"give its value: --env {name}=VALUE")
            value = environ[name]
        if is_secret_name(name) or redact(value) != value:
            parsed.pass_env.append(name)  # a secret is passed through by name, never written into the job
            continue
        num, word = number(value), _ON_OFF.get(value.lower())
        pname = name.lower()
        if pname in taken or pname in RESERVED:
            raise InitError(f"--env {name}: the name clashes with the knob {pname!r}", "rename the flag or the variable")
        if num is not None:
            parsed.knobs.append(Knob(pname, name, _kind(num), num, where="env"))
        elif word is not None:
            parsed.knobs.append(Knob(pname, name, "bool", word, where="env"))
        else:
            parsed.env_fixed[name] = value
            continue
        taken.add(pname)


def _kind(value: int | float) -> str:
    return "int" if isinstance(value, int) else "float"
