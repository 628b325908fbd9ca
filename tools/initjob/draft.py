"""From a parsed command to a commented job file: each knob's proposed range and why, the metric, the budget."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .command import Knob, ParsedCommand

WRAPPER = "tunesmith.tools.initjob.wrap"
_MAXIMISED = re.compile(r"throughput|per_s(ec)?$|_ps$|ops|rate|score|bandwidth|gflops|tflops|flops|speed|qps|"
                        r"tokens_per|samples_per|items_per|mb_s|gb_s|accuracy|hits", re.I)
_PARALLEL = re.compile(r"thread|worker|jobs?$|procs?|nproc|^j$|^n$|parallel|cores", re.I)


@dataclass
class Draft:
    """A drafted job: its TOML text, the knobs in it and the lines worth telling the user."""

    name: str
    toml: str
    knobs: list[Knob]
    metric: str
    direction: str
    notes: list[str] = field(default_factory=list)


def guess_direction(metric: str) -> str:
    """``maximize`` for names that read like a rate or a score (throughput, ops, *_per_s), else ``minimize``."""
    return "maximize" if metric != "seconds" and _MAXIMISED.search(metric) else "minimize"


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def propose(knob: Knob) -> tuple[list[Any], str]:
    """The values to try for a numeric knob (the user's value always among them) and the reason, in words."""
    v = knob.value
    if knob.choices:
        vals = [c for c in (_num(c) for c in knob.choices) if c is not None] or list(knob.choices)
        vals = sorted(set(vals) | {v}, key=_sort_key)
        return vals, "the choices --help lists"
    if knob.kind == "int":
        if v >= 1:
            vals = {max(1, v // 4), max(1, v // 2), v, v * 2, v * 4}
            why = f"powers of two around your {v}"
            if _PARALLEL.search(knob.name):
                cap = max(v, 2 * (os.cpu_count() or 1))
                vals = {x for x in vals if x <= cap}
                why += f" (parallelism: capped at twice this machine's {os.cpu_count()} CPUs)"
        else:
            vals, why = ({0, 1, 2, 4, 8} if v == 0 else {v}), "small values from your 0" if v == 0 else "your value"
    else:
        vals = {_round(v * f) for f in (0.25, 0.5, 1, 2, 4)} if v else {0.0, 0.1, 0.5, 1.0}
        vals.add(v)
        why = f"factors 1/4 to 4 of your {v}"
    if isinstance(knob.help_default, (int, float)) and not isinstance(knob.help_default, bool):
        vals.add(int(knob.help_default) if knob.kind == "int" else float(knob.help_default))
        why += f", plus the documented default {knob.help_default}"
    if knob.low is not None or knob.high is not None:
        lo, hi = knob.low if knob.low is not None else -math.inf, knob.high if knob.high is not None else math.inf
        vals = {x for x in vals if lo <= x <= hi} | {v}
        why += f", within the documented range {knob.low:g}..{knob.high:g}" if knob.low is not None and knob.high is not None else ""
    return sorted(vals), why


def _num(x: Any) -> Any:
    from .command import number

    return number(x) if isinstance(x, str) else x


def _sort_key(x: Any) -> tuple[int, Any]:
    return (0, x) if isinstance(x, (int, float)) else (1, str(x))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _comment(text: str) -> str:
    return "# " + " ".join(str(text).split())[:200]


def render_toml(parsed: ParsedCommand, *, name: str, cwd: Path, metric: str, metric_file: str | None,
                direction: str, trials: int, repeats: int, timeout_s: float, source: str) -> Draft:
    """The commented job TOML for ``parsed`` (knobs used in the command; knobs only --help offers, commented out)."""
    command = ["{python}", "-m", WRAPPER, "--cwd", str(cwd), "--metric", metric]
    command += ["--metric-file", metric_file] if metric_file else []
    command += ["--", *parsed.template]
    metric_words = ("wall time of the whole program, measured around it" if metric == "seconds" else
                    f"the number {metric!r} the program reports as JSON on "
                    + (f"the file {metric_file}" if metric_file else "stdout"))
    lines = [
        f"# Drafted by `tune init` from: {source}",
        "# Every knob below keeps your own value as its default, so the study's first trial is your command as you",
        "# run it. Edit the values to try, delete knobs you do not want tuned, then run `tune run THIS_FILE`.",
        f"name = {_toml(name)}",
        'target = "command"',
        f"description = {_toml('tune the command: ' + source)}",
        "",
        "[workload]",
        "# Your command, run through tunesmith's wrapper (it runs the program in your folder, times it and reads",
        "# the metric); the {placeholders} are the knobs.",
        f"command = {_toml(command)}",
        "drop_caches = false   # a command's own storage behaviour is not assumed; set true for I/O-bound programs",
    ]
    notes: list[str] = []
    used = [k for k in parsed.knobs if not k.from_help_only]
    for k in used + [k for k in parsed.knobs if k.from_help_only]:
        block = _knob_block(k)
        if k.from_help_only:
            block = ["# " + b if b else b for b in block]
        lines += [""] + block
    lines += ["", "[objective]", _comment(f"metric: {metric_words}"), f"metric = {_toml(metric)}",
              f"direction = {_toml(direction)}" + ("" if metric == "seconds" else
                                                   "   # guessed from the name: check it"),
              "min_effect = 0.05   # a change must gain at least 5 % to be claimed",
              "", "[budget]", f"trials = {trials}", "", "[measure]",
              f"repeats = {repeats}   # each configuration runs this many times; the judge compares their spread",
              "warmup = 0", "", "[runner]", 'kind = "local"',
              f"timeout_s = {timeout_s:g}   # per run" ,
              "memory_mb = 4096"]
    if parsed.env_fixed:
        lines.append(f"env = {{ {', '.join(f'{k} = {_toml(v)}' for k, v in parsed.env_fixed.items())} }}")
    if parsed.pass_env:
        lines.append(f"pass_env = {_toml(parsed.pass_env)}   # secrets: passed by name, never written here")
    lines += ["", "[strategy]", 'name = "planner"', ""]
    return Draft(name, "\n".join(lines), used, metric, direction, notes)


def _knob_block(k: Knob) -> list[str]:
    head = f"[workload.params.{k.name}]"
    where = f"environment variable {k.flag}" if k.where == "env" else f"flag {k.flag}"
    doc = [_comment(f"--help: {k.help}")] if k.help else []
    if k.kind == "bool":
        given = "given" if k.value else "not given"
        why = f"on/off {where}: you run it {given}; both are tried"
        if k.from_help_only:
            why = f"on/off {where} from --help, not in your command: to tune it, uncomment and add \"{{{k.name}}}\" to command"
        out = [head, _comment(why), *doc, 'kind = "bool"', f"default = {_toml(bool(k.value))}"]
    else:
        values, why = propose(k)
        lead = f"{where}: you run it with {k.value}; trying {why}"
        if k.from_help_only:
            lead = (f"{where} from --help (documented default {k.value}), not in your command: to tune it, uncomment "
                    f"and add \"{k.flag}\", \"{{{k.name}}}\" to command")
        out = [head, _comment(lead), *doc, 'kind = "choice"', f"values = {_toml(values)}", f"default = {_toml(k.value)}"]
    if k.where == "env":
        out.append('apply = "env"')
    out.append(f"help = {_toml((k.help or where)[:160])}")
    return out


def default_name(argv: list[str]) -> str:
    """A study name from the program: ``python bench.py`` -> ``bench``."""
    from .helptext import program_prefix

    prog = Path(program_prefix(argv)[-1]).stem or "command"
    return (re.sub(r"[^A-Za-z0-9_.-]", "-", prog).strip("-.") or "command")[:60]
