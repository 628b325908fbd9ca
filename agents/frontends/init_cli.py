"""`tune init -- CMD ARGS...`: draft a commented job file from a command line the user already runs.

`tune run -- CMD ARGS...` drafts the same job with ``job_from_command``, saves it under the state folder and
runs it. The drafting itself lives in ``tunesmith.tools.initjob``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer


def is_command(first: Path, rest: list[str] | None) -> bool:
    """Whether `tune run`'s arguments are a command line (`tune run -- CMD ...`) rather than a job file."""
    if rest:
        return True
    text = str(first)
    return first.suffix != ".toml" and not first.is_dir() and (first.is_file() or shutil.which(text) is not None)


def job_from_command(argv: list[str], state_dir: Path, *, metric: str | None = None, trials: int | None = None,
                     say=print) -> Path:  # noqa: ANN001
    """Draft the job for ``argv`` and save it as ``STATE/jobs/NAME.toml`` (replacing an older draft); its path.

    Raises ``InitError`` (one line, exit 2) for a command that cannot be tuned.
    """
    from tunesmith.tools.initjob import draft_job, save_draft

    draft = draft_job(argv, metric=metric or "seconds", trials=trials or 12)
    path = save_draft(draft, state_dir / "jobs" / f"{draft.name}.toml", overwrite=True)
    knobs = ", ".join(k.name for k in draft.knobs)
    say(f"drafted job {path} (knobs: {knobs}; metric: {draft.metric}, {draft.direction}); {'; '.join(draft.notes)}")
    return path


def register(app: typer.Typer) -> None:
    """Add `tune init` to the CLI."""

    @app.command("init", context_settings={"allow_interspersed_args": False})
    def init(
        command: Annotated[list[str] | None, typer.Argument(help="the command as you run it, after `--`")] = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="where to write the job (default: NAME.toml)")] = None,
        metric: Annotated[str, typer.Option(help="a key of the JSON the program prints on stdout (default: wall time)")] = "seconds",
        metric_file: Annotated[str | None, typer.Option(help="read the metric's JSON from this file the program writes")] = None,
        maximize: Annotated[bool | None, typer.Option("--maximize/--minimize", help="the metric's direction (default: guessed)")] = None,
        env: Annotated[list[str] | None, typer.Option("--env", help="NAME=VALUE or NAME: an environment variable to tune")] = None,
        trials: Annotated[int, typer.Option(help="the trial budget")] = 12,
        repeats: Annotated[int, typer.Option(help="runs per configuration")] = 3,
        name: Annotated[str | None, typer.Option(help="the study's name (default: the program's)")] = None,
        probe: Annotated[bool, typer.Option("--probe/--no-probe", help="run the command once to check it and its metric")] = True,
        probe_timeout: Annotated[float, typer.Option(help="seconds the check run may take")] = 120.0,
        force: Annotated[bool, typer.Option(help="overwrite an existing job file")] = False,
    ) -> None:
        """Write a commented job file for a command you already run: `tune init -- python bench.py --threads 4`."""
        from tunesmith.agents.frontends.cli import _fail, _internal, _say
        from tunesmith.runners.errors import TunesmithError
        from tunesmith.tools.initjob import InitError, draft_job, save_draft

        try:
            if not command:
                raise InitError("no command given", "write it after `--`: tune init -- python bench.py --threads 4")
            if metric_file and metric == "seconds":
                raise InitError("--metric-file needs --metric KEY", "name the key to read, e.g. --metric throughput")
            direction = None if maximize is None else ("maximize" if maximize else "minimize")
            draft = draft_job(list(command), envs=list(env or []), metric=metric, metric_file=metric_file,
                              direction=direction, trials=trials, repeats=repeats, name=name, probe_run=probe,
                              probe_timeout_s=probe_timeout)
            path = save_draft(draft, out or Path(f"{draft.name}.toml"), overwrite=force)
        except TunesmithError as exc:
            raise _fail(exc) from None
        except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback in a file
            raise _internal(exc, Path(".tunesmith")) from None
        _say(f"wrote {path}: {len(draft.knobs)} knobs ({', '.join(k.name for k in draft.knobs)}), metric "
             f"{draft.metric} ({draft.direction}), {trials} trials; {'; '.join(draft.notes)}")
        _say(f"next: review it, then `tune run {path}`")
