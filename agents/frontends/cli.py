"""The `tune` command line.

Exit codes:
  0    the study finished (or the command succeeded);
  1    unexpected internal error (the traceback is in the state folder's crash.log);
  2    bad usage or a bad job file (one line names the field and the fix);
  3    the default configuration fails its correctness check, so nothing can be tuned against it;
  4    infrastructure failed: the runner, the study store (damaged, foreign, locked by another run) or
       the LLM endpoint;
  5    the default configuration could not be measured (it crashed, timed out, wrote no usable metric, or
       never ran), so no speedup can be stated; the output says how every trial failed;
  130  interrupted by Ctrl-C (SIGINT); the study is marked "interrupted" and resumes on the next run;
  141  the output was closed (`tune run | head`); stopped quietly, marked "interrupted", resumable;
  143  stopped by SIGTERM; marked "interrupted", resumable.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tunesmith.runners.errors import InfrastructureError, TunesmithError
from tunesmith.runners.secrets import redact

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="tunesmith: tune a job on real hardware.")


class _Stdout(Console):
    """stdout; when its reader goes away (`tune run | head`) the command stops like Ctrl-C, quietly (exit 141)."""

    def on_broken_pipe(self) -> None:
        from tunesmith.agents.frontends.live import OutputClosed

        _silence_stdout()
        raise OutputClosed


out = _Stdout(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

StateDir = Annotated[Path, typer.Option("--state-dir", help="where studies, checkpoints and scratch live")]
DEFAULT_STATE = Path(os.environ.get("TUNESMITH_HOME", ".tunesmith"))

EXIT_BASELINE_INCORRECT = 3
EXIT_BASELINE_UNMEASURED = 5
EXIT_INTERRUPTED = 130
EXIT_OUTPUT_CLOSED = 141
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop like Ctrl-C (the trial in flight is marked interrupted and retried on resume)."""


_signals: list[int] = []  # stop signals received during this `tune run`


def _on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
    _signals.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _stop_if_signalled(node: str, message: str, data: dict[str, Any]) -> None:  # noqa: ARG001
    """An observer called at every event: a signal whose exception Python swallowed (it landed in a
    callback whose errors are ignored, such as a fork hook) still stops the study here."""
    if _signals:
        raise Terminated if _signals[-1] == signal.SIGTERM else KeyboardInterrupt


def _fail(exc: TunesmithError) -> typer.Exit:
    err.print(f"error: {exc.line()}", markup=False, highlight=False)
    return typer.Exit(exc.exit_code)


LLM_MODES = ("auto", "off", "endpoint", "local")


def check_llm_mode(llm: str | None) -> None:
    """Every command's ``--llm``: one of LLM_MODES (None: the command's default), else one line, exit 2."""
    if llm is not None and llm not in LLM_MODES:
        raise _fail(TunesmithError(f"--llm {llm!r} is not a mode", "use auto, off, endpoint or local"))


def _internal(exc: BaseException, state_dir: Path) -> typer.Exit:
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "crash.log"
    log.write_text(redact("".join(traceback.format_exception(exc))), encoding="utf-8")
    first = redact((str(exc).splitlines() or [""])[0][:200])
    err.print(f"internal error: {type(exc).__name__}: {first} (traceback in {log})", markup=False, highlight=False)
    return typer.Exit(1)


def _say(text: str) -> None:
    """One line on stdout; a reader that went away stops the command like Ctrl-C (see OutputClosed)."""
    from tunesmith.agents.frontends.live import OutputClosed

    try:
        out.print(text, markup=False, highlight=False)
        out.file.flush()
    except BrokenPipeError:
        raise OutputClosed from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so nothing more (not even the flush at exit) hits the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _quiet_exit() -> typer.Exit:
    """The reader closed our stdout: leave quietly with the documented code."""
    _silence_stdout()
    return typer.Exit(EXIT_OUTPUT_CLOSED)


@contextmanager
def _reading(state_dir: Path) -> Iterator[None]:
    """What every read command shares: one-line errors, a damaged store is exit 4, a closed pipe is quiet."""
    from tunesmith.agents.frontends.live import OutputClosed

    try:
        yield
    except typer.Exit:
        raise
    except TunesmithError as exc:
        raise _fail(exc) from None
    except sqlite3.DatabaseError as exc:
        raise _fail(InfrastructureError(f"study store {state_dir / 'tunesmith.db'} cannot be read ({exc})",
                                        "move the damaged file aside or pass another --state-dir")) from None
    except (BrokenPipeError, OutputClosed):
        raise _quiet_exit() from None
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback in a file
        raise _internal(exc, state_dir) from None


@app.command()
def run(
    job_file: Annotated[Path, typer.Argument(help="the job's TOML file, or `-- CMD ARGS...`: tune a command line")],
    command: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
    metric: Annotated[str | None, typer.Option(help="with `-- CMD`: a key of the JSON it prints (default: wall time)")] = None,
    llm: Annotated[str | None, typer.Option(help="auto | off | endpoint | local (SmolLM2 via llama.cpp)")] = None,
    strategy: Annotated[str | None, typer.Option(help="planner | grid | random | tpe")] = None,
    trials: Annotated[int | None, typer.Option(help="override the trial budget (1 or more)")] = None,
    restart: Annotated[bool, typer.Option(help="archive an existing study of this name and start afresh")] = False,
    plain: Annotated[bool, typer.Option(help="one line per trial even on a terminal")] = False,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Tune JOB_FILE: propose, run, judge and reflect until the budget is spent; resumes if interrupted."""
    from tunesmith.agents.frontends.live import LiveView, OutputClosed, PlainView
    from tunesmith.agents.study import baseline_failed, baseline_unmeasured, drive, open_session, prepare_job

    check_llm_mode(llm)
    _signals.clear()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        from tunesmith.agents.frontends.init_cli import is_command, job_from_command

        if is_command(job_file, command):  # `tune run -- CMD ARGS...`: draft the job (as `tune init`), then run it
            job_file = job_from_command([str(job_file), *(command or [])], state_dir, metric=metric, trials=trials, say=_say)
        job = prepare_job(job_file, trials=trials, strategy=strategy)
        holder: list = []
        view = PlainView(out) if plain or not out.is_terminal else LiveView(out, holder)
        with view, open_session(job, state_dir, llm_mode=llm, restart=restart, observers=[_stop_if_signalled, view],
                                job_path=str(job_file)) as session:
            holder.append(session)
            _say(f"LLM mode: {session.llm_description}")
            outcome = drive(session)
            from tunesmith.knowledge.report import write_report

            md, _ = write_report(session.store, session.study, state_dir / "reports")
        _print_outcome(outcome, job.objective.metric, job.objective.minimize, md)
    except TunesmithError as exc:
        raise _fail(exc) from None
    except OutputClosed:
        raise _quiet_exit() from None
    except Terminated:
        err.print("terminated: finished trials are stored; run the same command to resume")
        raise typer.Exit(EXIT_TERMINATED) from None
    except KeyboardInterrupt:
        err.print("interrupted: finished trials are stored; run the same command to resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except sqlite3.DatabaseError as exc:
        raise _fail(InfrastructureError(f"a study database in {state_dir} cannot be used ({exc})",
                                        "move the damaged file aside or pass another --state-dir")) from None
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback in a file
        raise _internal(exc, state_dir) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if baseline_failed(outcome):
        raise typer.Exit(EXIT_BASELINE_INCORRECT)
    if baseline_unmeasured(outcome):
        raise typer.Exit(EXIT_BASELINE_UNMEASURED)


def _print_outcome(outcome, metric: str, minimize: bool, report_path: Path) -> None:  # noqa: ANN001
    from tunesmith.agents.study import baseline_unmeasured, failure_summary
    from tunesmith.knowledge.report import describe_speedup

    _say(f"stopped: {outcome.stop_reason}")
    best, base = outcome.best, outcome.baseline
    if best is not None:
        _say(f"best config (trial #{best.number}): {json.dumps(best.candidate.config)}")
    result = outcome.result
    sp = result.speedup if result is not None else None  # the reported one: the final re-measure when there is one
    first_runs = [t for t in outcome.trials if t.candidate.origin != "remeasure" and not t.interrupted]
    if first_runs and not any(t.measurement and t.measurement.ok for t in first_runs):
        _say(f"every trial failed: {failure_summary(outcome.trials)}")
    elif base is not None and baseline_unmeasured(outcome):
        m = base.measurement
        why = f"{m.status.value}: {m.detail}" if m else "it did not finish"
        _say(f"the default configuration (trial #{base.number}) could not be measured ({why}); "
             "no speedup over it can be stated")
    elif base is None:
        _say("the default configuration was never run, so no speedup can be stated")
    elif best is not None and best.id == base.id:
        _say("no candidate beat the default by a confirmed margin (see the report for each comparison)")
        top, tsp = (result.fastest, result.fastest_speedup) if result is not None else (None, None)
        if top is not None and tsp is not None and tsp.available:
            _say(f"fastest-looking trial #{top.number} (not confirmed, verdict "
                 f"{top.verdict.value if top.verdict else 'unjudged'}): {json.dumps(top.candidate.config)} at "
                 f"{tsp.interval()} against {tsp.versus()} ({tsp.basis})")
    elif sp is not None:
        _say(describe_speedup(sp, result.final, metric))  # type: ignore[union-attr]
    elif not any(t.measurement and t.measurement.samples for t in outcome.trials):
        _say("timing unavailable: candidates were checked for correctness only")
    _say(f"report: {report_path}")


def _open_store(state_dir: Path):  # noqa: ANN202
    """The study store, read-only: `tune list/status/report` never write it."""
    from tunesmith.knowledge.study_store import StudyStore

    if not (state_dir / "tunesmith.db").exists():
        raise _fail(TunesmithError(f"no studies in {state_dir}", "run `tune run JOB` first or pass --state-dir"))
    return StudyStore(state_dir / "tunesmith.db", read_only=True)


def _status(store, info) -> str:  # noqa: ANN001
    """The stored status, except that a "running" study nobody holds the lock of was killed."""
    if info.status == "running" and store.lock_holder(info.name) is None:
        return "interrupted (killed)"
    return info.status


@app.command("list")
def list_studies(state_dir: StateDir = DEFAULT_STATE) -> None:
    """List the studies in the state folder."""
    with _reading(state_dir):
        store = _open_store(state_dir)
        try:
            table = Table("study", "target", "status", "trials", "LLM mode", "updated")
            for s in store.studies():
                table.add_row(s.name, s.target, _status(store, s), str(store.count_trials(s.name)),
                              (s.llm_mode or "offline").split(":")[0], s.updated_at[:19])
        finally:
            store.close()
        out.print(table)
        out.file.flush()


@app.command()
def status(study: Annotated[str | None, typer.Argument()] = None, state_dir: StateDir = DEFAULT_STATE) -> None:
    """Show every study, or one study's trials and best result."""
    from tunesmith.knowledge.report import build_report

    if study is None:
        list_studies(state_dir)
        return
    with _reading(state_dir):
        store = _open_store(state_dir)
        try:
            report = build_report(store, study)
            shown = _status(store, store.study(study))
        finally:
            store.close()
        table = Table("#", "origin", "config", "status", "median", "IQR", "verdict", title=f"{study} ({shown})")
        for t in report["trials"]:
            table.add_row(str(t["number"]), t["origin"], json.dumps(t["config"]), str(t["status"]),
                          f"{t['median']:.4g}" if t["median"] is not None else "–",
                          f"{t['iqr']:.2g}" if t["iqr"] is not None else "–", t["verdict"] or "")
        out.print(table)
        if report["speedup"]:
            from tunesmith.knowledge.report import describe_speedup
            from tunesmith.runners.speedup import Speedup

            line = describe_speedup(Speedup.from_dict(report["speedup"]), report["final"], "", short=True)
            out.print(line, markup=False, highlight=False)
        elif report["best"] and report["baseline"] and report["best"]["number"] == report["baseline"]["number"]:
            out.print("the default is the best confirmed configuration")
        out.file.flush()


@app.command()
def report(
    study: Annotated[str, typer.Argument(help="study name (see `tune list`)")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="folder for STUDY.md and STUDY.json")] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Write the study's report as Markdown, JSON and a self-contained HTML page (plots; opens offline)."""
    from importlib import resources

    from tunesmith.knowledge.report import write_report
    from tunesmith.knowledge.report_html import write_html_report

    with _reading(state_dir):
        store = _open_store(state_dir)
        try:
            md, js = write_report(store, study, out_dir or state_dir / "reports")
            page = resources.files("tunesmith.prompts").joinpath("report.html.j2").read_text(encoding="utf-8")
            html = write_html_report(store, study, out_dir or state_dir / "reports", page)
        finally:
            store.close()
        _say(f"wrote {md}, {js} and {html}")


# Command groups that live in their own modules: each module defines `register(app)`. Adding a front end
# is one module and one line here. Modules keep heavy imports inside their commands (start-up time).
COMMAND_MODULES = (
    "tunesmith.agents.frontends.kernel_cli",
    "tunesmith.agents.frontends.knowledge_cli",
    "tunesmith.agents.frontends.io_cli",
    "tunesmith.agents.frontends.ci_cli",
    "tunesmith.agents.frontends.export_cli",
    "tunesmith.agents.frontends.init_cli",
    "tunesmith.agents.frontends.chat_cli",
)


def command_group(name: str, help: str) -> typer.Typer:
    """The sub-command group ``tune NAME ...``, created on first use (several modules may add to one group)."""
    for info in app.registered_groups:
        if info.name == name:
            return info.typer_instance
    group = typer.Typer(add_completion=False, no_args_is_help=True, help=help)
    app.add_typer(group, name=name)
    return group


def _register_command_modules() -> None:
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)


_register_command_modules()


def main() -> None:
    """The console entry point: a usage mistake (an unknown command or option, a value of the wrong type) is
    one line naming the problem and the fix, exit 2, instead of a boxed usage text."""
    try:
        code = app(standalone_mode=False, prog_name="tune")
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click's usage errors (typer vendors its own click: matched by shape)
        if not (hasattr(exc, "format_message") and getattr(exc, "exit_code", None) == 2):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            out.print(exc.format_message(), markup=False, highlight=False)
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "tune"
        message = " ".join(exc.format_message().split()).rstrip(".")
        err.print(f"error: {message}; fix: see `{command} --help`", markup=False, highlight=False)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
