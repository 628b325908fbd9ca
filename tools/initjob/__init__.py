"""tunesmith.tools.initjob: "tune this" — from a command line a user already runs to a commented job file.

``draft_job(argv, ...)`` reads the command (numeric and on/off flags, ``--env`` variables), the program's
``--help`` (run contained, with a short timeout), runs the command once as a probe (it must work, and report
the metric when one is named) and returns a ``Draft`` whose TOML loads with ``tune run``. ``save_draft``
writes it. The job runs the program through ``tunesmith.tools.initjob.wrap``, which times it and reads the
metric from its JSON output. ``tune init`` and ``tune run -- CMD`` both call this.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import tomllib

from .command import InitError, Knob, ParsedCommand, add_env, number, parse_command
from .draft import Draft, default_name, guess_direction, propose, render_toml
from .helptext import HelpOption, enrich_with_manuals, parse_help, program_prefix, read_help
from .wrap import EXIT_NO_METRIC, how_to_report

__all__ = ["Draft", "InitError", "Knob", "ParsedCommand", "draft_job", "guess_direction", "parse_command",
           "parse_help", "propose", "save_draft", "check_program", "how_to_report", "number"]


def check_program(argv: list[str], cwd: Path) -> None:
    """A one-line InitError when the program (or the Python script) does not exist."""
    prefix = program_prefix(argv)
    prog = prefix[0]
    if ("/" in prog and not (cwd / prog).is_file()) or ("/" not in prog and shutil.which(prog) is None):
        raise InitError(f"program {prog!r} not found", "check the spelling, or give its full path")
    if len(prefix) > 1 and prefix[-2] != "-m" and not (cwd / prefix[-1]).is_file():
        raise InitError(f"script {prefix[-1]!r} not found in {cwd}", "run `tune init` from the folder you run it in")


def _apply_help(parsed: ParsedCommand, options: list[HelpOption]) -> None:
    """Fill each knob's description, choices, range and default from --help; add documented knobs not used."""
    from .command import param_name

    by_flag = {f: o for o in options for f in o.flags}
    taken = {k.name for k in parsed.knobs}
    for k in parsed.knobs:
        o = by_flag.get(k.flag)
        if o is None or k.where != "arg":
            continue
        k.help, k.choices, k.low, k.high = o.description, o.choices, o.low, o.high
        k.help_default = o.default
        long = next((f for f in o.flags if f.startswith("--")), None)
        if long and not k.flag.startswith("--"):  # -n 8 documented as -n N, --size N: the knob is "size"
            taken.discard(k.name)
            old, k.name = k.name, param_name(long, taken)
            parsed.template = [e.replace(f"{{{old}}}", f"{{{k.name}}}") for e in parsed.template]
    used = {o_flag for k in parsed.knobs for o_flag in (by_flag[k.flag].flags if k.flag in by_flag else [k.flag])}

    for o in options:
        long = next((f for f in o.flags if f.startswith("--")), None)
        if long is None or set(o.flags) & used or long in ("--help", "--version"):
            continue
        if not o.takes_value and long.islower() and "_" not in long:
            parsed.knobs.append(Knob(param_name(long, taken), long, "bool", False, style="presence", help=o.description,
                                     from_help_only=True))
        elif o.takes_value and isinstance(o.default, (int, float)) and not isinstance(o.default, bool):
            kind = "int" if isinstance(o.default, int) else "float"
            parsed.knobs.append(Knob(param_name(long, taken), long, kind, o.default, help=o.description,
                                     choices=o.choices, low=o.low, high=o.high, from_help_only=True))


def probe(toml_text: str, cwd: Path, timeout_s: float) -> float:
    """Run the drafted command once with its defaults, as a trial would; its wall time in seconds.

    A run that fails, or reports no metric, is a one-line InitError saying what to fix.
    """
    from tunesmith.runners.base import RunSpec
    from tunesmith.runners.job import parse_job
    from tunesmith.runners.local import LocalRunner
    from tunesmith.tools.plugins import TARGETS

    job = parse_job(tomllib.loads(toml_text), base_dir=cwd, origin="drafted job")
    target = TARGETS.create(job.target, job)
    with tempfile.TemporaryDirectory(prefix="tunesmith-probe-") as tmp:
        argv, env = target.render(target.baseline().config, Path(tmp) / "out")
        runner = LocalRunner()
        try:
            res = runner.run(RunSpec(argv=argv, cwd=Path(tmp), env=env, timeout_s=timeout_s, memory_mb=4096))
        finally:
            runner.close()
            target.close()
    last = next((ln.strip() for ln in reversed(res.stderr_tail.splitlines()) if ln.strip()), "")
    if res.returncode == EXIT_NO_METRIC:
        raise InitError(last.split("; fix: ")[0], last.split("; fix: ")[-1] if "; fix: " in last else
                        how_to_report(job.objective.metric))
    if res.timed_out:
        raise InitError(f"the command did not finish within {timeout_s:g} s when run once",
                        "pass --probe-timeout SECONDS, or --no-probe to skip the check")
    if res.launch_error or res.returncode != 0 or res.result is None:
        why = res.launch_error or last or f"exit code {res.returncode}"
        raise InitError(f"the command failed when run once as written ({why[:200]})",
                        "make sure it runs as written from this folder")
    return float(res.result.get("seconds", res.wall_s))


def draft_job(argv: list[str], *, cwd: Path | None = None, envs: list[str] = (), metric: str = "seconds",
              metric_file: str | None = None, direction: str | None = None, trials: int = 12, repeats: int = 3,
              name: str | None = None, help_timeout_s: float = 10.0, probe_run: bool = True,
              probe_timeout_s: float = 120.0) -> Draft:
    """Draft the job for ``argv`` (see the module's docstring); every problem is a one-line InitError."""
    cwd = (cwd or Path.cwd()).resolve()
    if not argv:
        raise InitError("no command given", "write it after `--`, e.g. `tune init -- python prog.py --threads 4`")
    check_program(argv, cwd)
    from tunesmith.runners.secrets import redact

    if any(redact(a) != a for a in argv):
        raise InitError("the command line holds a secret (a key or token), which would be written into the job",
                        "pass it in an environment variable and name it with --env NAME")
    if trials < 1:
        raise InitError(f"--trials {trials}: the trial budget must be at least 1", "pass --trials 1 or more")
    text = read_help(argv, cwd, help_timeout_s)
    options = enrich_with_manuals(text, default_name(argv), parse_help(text)) if text else []
    flag_only = {f for o in options if not o.takes_value for f in o.flags}
    valued = {f for o in options if o.takes_value for f in o.flags}
    parsed = parse_command(list(argv), flag_only, valued)
    add_env(parsed, list(envs))
    if not parsed.knobs:
        raise InitError(f"nothing to tune in {' '.join(argv)[:120]!r}: no numeric or on/off flags",
                        "add the flags you want tuned with your values (e.g. --threads 4, --fast) or name "
                        "variables with --env NAME=VALUE")
    _apply_help(parsed, options)
    source = " ".join(argv)
    draft_kw = dict(name=name or default_name(argv), cwd=cwd, metric=metric, metric_file=metric_file,
                    direction=direction or guess_direction(metric), trials=trials, repeats=repeats, source=source)
    draft = render_toml(parsed, timeout_s=300, **draft_kw)
    notes = [f"--help: read {len(options)} options" if options else "--help: none found; types come from your values"]
    if probe_run:
        seconds = probe(draft.toml, cwd, probe_timeout_s)
        timeout = max(60, math.ceil(seconds * 10))
        draft = render_toml(parsed, timeout_s=timeout, **draft_kw)
        notes.append(f"ran it once: {seconds:.3g} s; each run may take up to {timeout} s")
    draft.notes = notes
    _check_loads(draft.toml, cwd)
    return draft


def _check_loads(toml_text: str, cwd: Path) -> None:
    """The drafted text must load as a job and build its target (the same checks `tune run` makes)."""
    from tunesmith.runners.job import parse_job
    from tunesmith.tools.plugins import TARGETS

    job = parse_job(tomllib.loads(toml_text), base_dir=cwd, origin="drafted job")
    target = TARGETS.create(job.target, job)
    try:
        target.space()
        target.baseline()
    finally:
        target.close()


def save_draft(draft: Draft, path: Path, *, overwrite: bool = False) -> Path:
    """Write the drafted job to ``path``; an existing file is kept unless ``overwrite``."""
    if path.exists() and not overwrite:
        raise InitError(f"{path} already exists", "pass --force to overwrite it, or --out another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(draft.toml, encoding="utf-8")
    return path

