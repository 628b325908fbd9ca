"""The `tune` command line.

Exit codes: 0 the study finished (or the command succeeded); 1 unexpected internal error; 2 bad usage or a
bad job file; 3 the default configuration fails its correctness check, so nothing can be tuned against it;
4 infrastructure (runner, store, LLM endpoint) failed; 130 interrupted (the study resumes on the next run).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tunesmith.runners.errors import TunesmithError

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="tunesmith: tune a job on real hardware.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

StateDir = Annotated[Path, typer.Option("--state-dir", help="where studies, checkpoints and scratch live")]
DEFAULT_STATE = Path(os.environ.get("TUNESMITH_HOME", ".tunesmith"))


def _fail(exc: TunesmithError) -> typer.Exit:
    err.print(f"error: {exc.line()}", markup=False, highlight=False)
    return typer.Exit(exc.exit_code)


def _internal(exc: BaseException, state_dir: Path) -> typer.Exit:
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "crash.log"
    log.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    first = (str(exc).splitlines() or [""])[0][:200]
    err.print(f"internal error: {type(exc).__name__}: {first} (traceback in {log})", markup=False, highlight=False)
    return typer.Exit(1)


@app.command()
def run(
    job_file: Annotated[Path, typer.Argument(help="the job's TOML file")],
    llm: Annotated[str | None, typer.Option(help="auto | off | endpoint | local (SmolLM2 via llama.cpp)")] = None,
    strategy: Annotated[str | None, typer.Option(help="planner | grid | random | tpe")] = None,
    trials: Annotated[int | None, typer.Option(help="override the trial budget")] = None,
    restart: Annotated[bool, typer.Option(help="archive an existing study of this name and start afresh")] = False,
    plain: Annotated[bool, typer.Option(help="one line per trial even on a terminal")] = False,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Tune JOB_FILE: propose, run, judge and reflect until the budget is spent; resumes if interrupted."""
    from tunesmith.agents.frontends.live import LiveView, PlainView
    from tunesmith.agents.study import baseline_failed, drive, open_session, prepare_job

    if llm is not None and llm not in ("auto", "off", "endpoint", "local"):
        raise _fail(TunesmithError(f"--llm {llm!r} is not a mode", "use auto, off, endpoint or local"))
    try:
        job = prepare_job(job_file, trials=trials, strategy=strategy)
        holder: list = []
        view = PlainView(out) if plain or not out.is_terminal else LiveView(out, holder)
        with view, open_session(job, state_dir, llm_mode=llm, restart=restart, observers=[view],
                                job_path=str(job_file)) as session:
            holder.append(session)
            out.print(f"LLM mode: {session.llm_description}", markup=False, highlight=False)
            outcome = drive(session)
            from tunesmith.knowledge.report import write_report

            md, _ = write_report(session.store, session.study, state_dir / "reports")
    except TunesmithError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        err.print("interrupted: finished trials are stored; run the same command to resume")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback in a file
        raise _internal(exc, state_dir) from None
    _print_outcome(outcome, job.objective.metric, job.objective.minimize, md)
    if baseline_failed(outcome):
        raise typer.Exit(3)


def _print_outcome(outcome, metric: str, minimize: bool, report_path: Path) -> None:  # noqa: ANN001
    from tunesmith.knowledge.report import best_measured_summary, speedup_summary

    out.print(f"stopped: {outcome.stop_reason}", markup=False)
    best, base = outcome.best, outcome.baseline
    if best is not None:
        out.print(f"best config (trial #{best.number}): {json.dumps(best.candidate.config)}", markup=False)
    sp = speedup_summary(best, base, minimize)
    if best is not None and base is not None and best.id == base.id:
        out.print("no candidate beat the default by a confirmed margin (see the report for each comparison)")
        top = best_measured_summary(outcome.trials, base, best, minimize)
        if top and top.get("speedup"):
            out.print(f"fastest-looking trial #{top['number']} (not confirmed, verdict {top['verdict'] or 'unjudged'}): "
                      f"{json.dumps(top['config'])} at {top['speedup']:.3f}x "
                      f"(95% interval {top['low']:.3f}-{top['high']:.3f})", markup=False)
    elif sp:
        out.print(f"speedup over the default: {sp['speedup']:.3f}x (95% interval {sp['low']:.3f}-{sp['high']:.3f}); "
                  f"{metric} median {sp['best_median']:.4g} (IQR {sp['best_iqr']:.2g}) vs default "
                  f"{sp['baseline_median']:.4g} (IQR {sp['baseline_iqr']:.2g})", markup=False)
    elif not any(t.measurement and t.measurement.samples for t in outcome.trials):
        out.print("timing unavailable: candidates were checked for correctness only", markup=False)
    out.print(f"report: {report_path}", markup=False)


def _open_store(state_dir: Path):  # noqa: ANN202
    from tunesmith.knowledge.study_store import StudyStore

    if not (state_dir / "tunesmith.db").exists():
        raise _fail(TunesmithError(f"no studies in {state_dir}", "run `tune run JOB` first or pass --state-dir"))
    return StudyStore(state_dir / "tunesmith.db")


@app.command("list")
def list_studies(state_dir: StateDir = DEFAULT_STATE) -> None:
    """List the studies in the state folder."""
    store = _open_store(state_dir)
    table = Table("study", "target", "status", "trials", "LLM mode", "updated")
    for s in store.studies():
        table.add_row(s.name, s.target, s.status, str(len(store.trials(s.name))),
                      (s.llm_mode or "offline").split(":")[0], s.updated_at[:19])
    out.print(table)


@app.command()
def status(study: Annotated[str | None, typer.Argument()] = None, state_dir: StateDir = DEFAULT_STATE) -> None:
    """Show every study, or one study's trials and best result."""
    from tunesmith.knowledge.report import build_report

    store = _open_store(state_dir)
    if study is None:
        list_studies(state_dir)
        return
    try:
        report = build_report(store, study)
    except TunesmithError as exc:
        raise _fail(exc) from None
    table = Table("#", "origin", "config", "status", "median", "IQR", "verdict", title=f"{study} ({report['status']})")
    for t in report["trials"]:
        table.add_row(str(t["number"]), t["origin"], json.dumps(t["config"]), str(t["status"]),
                      f"{t['median']:.4g}" if t["median"] is not None else "–",
                      f"{t['iqr']:.2g}" if t["iqr"] is not None else "–", t["verdict"] or "")
    out.print(table)
    sp = report["speedup"]
    if sp:
        out.print(f"best vs default: {sp['speedup']:.3f}x [{sp['low']:.3f}, {sp['high']:.3f}]")
    elif report["best"] and report["baseline"] and report["best"]["number"] == report["baseline"]["number"]:
        out.print("the default is the best confirmed configuration")


@app.command()
def report(
    study: Annotated[str, typer.Argument(help="study name (see `tune list`)")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="folder for STUDY.md and STUDY.json")] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Write the study's report as Markdown and JSON."""
    from tunesmith.knowledge.report import write_report

    store = _open_store(state_dir)
    try:
        md, js = write_report(store, study, out_dir or state_dir / "reports")
    except TunesmithError as exc:
        raise _fail(exc) from None
    out.print(f"wrote {md} and {js}", markup=False)


def main() -> None:  # pragma: no cover - console entry for `python -m`
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
