"""`tune ci`: guard a repository's tuned configs in CI, and re-tune them when they regress.

The decision is ``tools/ci`` (the core's bootstrap comparison, re-measured once before failing); the runs
go through the core's session and trial runner, stored in the study store as ``<job>.ci-check``; a
re-tune is the real study loop (``open_session`` + ``drive``) with a small budget, stored as
``<job>.ci-retune``. Exit codes: 0 ok, 1 regression, 2 usage, 3 correctness failure, 4 infrastructure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from tunesmith.agents.session import TuningSession
    from tunesmith.runners.job import Job
    from tunesmith.tools.ci.baseline import Entry
    from tunesmith.tools.ci.check import EntryResult, Look
    from tunesmith.tools.ci.threshold import Threshold


def register(app: typer.Typer) -> None:
    """Add `tune ci` to the command line."""
    from tunesmith.agents.frontends.cli import DEFAULT_STATE

    @app.command("ci")
    def ci(
        baseline: Annotated[Path, typer.Argument(help="the checked-in baseline file (.toml or .json)")],
        threshold: Annotated[str | None, typer.Option(help="pytest-benchmark syntax, e.g. median:5% or mean:0.001 "
                                                      "(default: the file's)")] = None,
        write_baseline: Annotated[bool, typer.Option("--write-baseline", help="create or update BASELINE from "
                                                     "finished studies (--study) instead of checking")] = False,
        study: Annotated[list[str] | None, typer.Option(help="a finished study to write (with --write-baseline; "
                                                        "repeatable)")] = None,
        job: Annotated[Path | None, typer.Option(help="the study's job file, when the store does not know it "
                                                 "(with --write-baseline)")] = None,
        retune: Annotated[bool, typer.Option("--retune", help="re-tune every entry and judge the re-tuned configs "
                                             "(exit 0 when they meet the threshold)")] = False,
        no_retune: Annotated[bool, typer.Option("--no-retune", help="do not re-tune a regressed entry")] = False,
        retune_trials: Annotated[int, typer.Option(min=1, help="trial budget of a re-tune")] = 8,
        samples: Annotated[int, typer.Option(min=2, help="fresh samples per config and look")] = 8,
        candidate: Annotated[Path | None, typer.Option(help="where the new baseline candidate goes (default: "
                                                       "BASELINE.candidate beside it)")] = None,
        out: Annotated[Path, typer.Option("--out", help="folder for ci-report.md, ci-report.json and "
                                          "ci-benchmark.json")] = Path("."),
        llm: Annotated[str, typer.Option(help="LLM mode of a re-tune: off | auto | endpoint | local")] = "off",
        state_dir: Annotated[Path, typer.Option("--state-dir", help="where studies, checkpoints and scratch "
                                                "live")] = DEFAULT_STATE,
    ) -> None:
        """Re-measure BASELINE's tuned configs here and fail on a regression (exit 1); re-tune on request."""
        from tunesmith.agents.frontends.cli import _fail, _reading, check_llm_mode
        from tunesmith.runners.errors import TunesmithError

        check_llm_mode(llm)
        with _reading(state_dir):
            if write_baseline:
                _write(baseline, study or [], job, threshold, state_dir)
                return
            if study or job:
                raise _fail(TunesmithError("--study and --job go with --write-baseline",
                                           "add --write-baseline, or leave them out to check the baseline"))
            code = _check(baseline, threshold, state_dir, samples=samples, retune=retune, no_retune=no_retune,
                          retune_trials=retune_trials, candidate=candidate, out=out, llm=llm)
        raise typer.Exit(code)


def _write(path: Path, studies: list[str], job: Path | None, threshold: str | None, state_dir: Path) -> None:
    from tunesmith.agents.frontends.cli import _open_store, _say
    from tunesmith.runners.errors import TunesmithError
    from tunesmith.tools.ci.baseline import entry_from_study, load_baseline, merge, write_baseline
    from tunesmith.tools.ci.threshold import parse_threshold

    if not studies:
        raise TunesmithError("--write-baseline needs the study to write", "add --study NAME (see `tune list`)")
    if job is not None and len(studies) > 1:
        raise TunesmithError("--job names one job file but several studies were given", "write one study at a time")
    if threshold:
        parse_threshold(threshold)
    old = load_baseline(path) if path.exists() else None
    store = _open_store(state_dir)
    try:
        entries = []
        for name in studies:
            info = store.study(name)
            job_file = job or Path(info.job_path)
            if not info.job_path and job is None or not job_file.is_file():
                raise TunesmithError(f"study {name!r}: its job file {str(job_file) or '(unknown)'} is not here",
                                     "pass --job PATH")
            entries.append(entry_from_study(store, name, job_file=job_file, baseline_path=path))
    finally:
        store.close()
    write_baseline(path, merge(old, entries, threshold))
    for e in entries:
        _say(f"{e.name}: {e.config} at {e.metric} median {e.performance.median:.4g} (IQR "
             f"{e.performance.iqr:.2g}, n={e.performance.n}); {e.basis}")
    _say(f"wrote {path} ({len(entries)} entr{'y' if len(entries) == 1 else 'ies'} written)")


def _check(path: Path, threshold_text: str | None, state_dir: Path, *, samples: int, retune: bool, no_retune: bool,
           retune_trials: int, candidate: Path | None, out: Path, llm: str) -> int:
    from tunesmith.agents.frontends.cli import _say
    from tunesmith.agents.study import prepare_job
    from tunesmith.runners.fingerprint import environment_fingerprint
    from tunesmith.tools.ci.baseline import job_path, load_baseline, merge, write_baseline
    from tunesmith.tools.ci.check import check_entry, exit_code
    from tunesmith.tools.ci.report import write_outputs
    from tunesmith.tools.ci.threshold import parse_threshold

    baseline = load_baseline(path)
    threshold = parse_threshold(threshold_text or baseline.threshold)
    results: list[EntryResult] = []
    new_entries: list[Entry] = []
    for entry in baseline.entries:
        job = prepare_job(job_path(entry, path))
        _say(f"{entry.name}: checking {entry.config} against the baseline ({threshold.text})")
        with _check_session(job, state_dir, restart=True) as session:
            measure = _measurer(session, entry.default_config, samples)
            result = check_entry(entry, threshold, measure, current_fingerprint=session.target.fingerprint(),
                                 min_effect=job.objective.min_effect)
            session.emit("ci", f"{entry.name}: {result.summary}", outcome=result.outcome)
            session.store.set_status(session.study, "finished")
        _say(f"{entry.name}: {result.summary}")
        if (retune or (result.outcome == "regression" and not no_retune)) and result.outcome != "not compared":
            fresh = _retune(entry, job, path, threshold, state_dir, retune_trials, samples, llm)
            new_entries.append(fresh[0])
            result.retune = fresh[1]
            _say(f"{entry.name}: re-tune: {fresh[1]['summary']}")
            if retune:  # the re-tuned config is what is judged
                result.outcome = fresh[1]["outcome"]
                result.summary = f"{result.summary}; after the re-tune: {fresh[1]['summary']}"
        results.append(result)
    written = None
    if new_entries:
        written = candidate or path.with_name(f"{path.stem}.candidate{path.suffix}")
        write_baseline(written, merge(baseline, new_entries, None))
        _say(f"new baseline candidate: {written}")
    fp = environment_fingerprint()
    machine = f"{fp.get('cpu')} ({fp.get('cpus')} CPUs{', ' + str(fp['gpu']) if fp.get('gpu') else ''})"
    paths = write_outputs(results, out, baseline_file=str(path), machine=machine,
                          candidate=str(written) if written else None)
    code = exit_code(results)
    _say(f"verdict: exit {code}; report: {paths['markdown']} (also {paths['json'].name}, {paths['benchmark'].name})")
    return code


@contextmanager
def _check_session(job: Job, state_dir: Path, *, restart: bool) -> Iterator[TuningSession]:
    """The core's session over the job's target and runner, for the study ``<job>.ci-check``."""
    from tunesmith.agents.study import open_session

    check_job = job.model_copy(update={"name": f"{job.name}.ci-check"})
    with open_session(check_job, state_dir, llm_mode="off", restart=restart) as session:
        yield session


def _measurer(session: TuningSession, default: dict[str, Any] | None, samples: int):  # noqa: ANN202
    """``measure(config, look)`` for tools.ci.check: interleaved runs stored as trials of the session's study."""
    from tunesmith.agents.frontends.cli import _say
    from tunesmith.tools.ci.check import interleaved_runs
    from tunesmith.tools.trials import run_candidate

    runner = session.executor.comparison_runner() if session.executor is not None else session.runner

    def run(cand, repeats):  # noqa: ANN001, ANN202
        trial = run_candidate(session.store, session.study, session.target, runner, cand,
                              scratch_root=session.scratch_root, repeats=repeats, ledger=session.ledger)
        m = trial.measurement
        session.emit("ci", f"trial #{trial.number}: {cand.rationale}: {m.detail if m else 'no measurement'}",
                     trial=trial.number)
        return trial

    def measure(config, look):  # noqa: ANN001, ANN202
        _say(f"  look {look}: {samples} fresh samples of {config}" + (" and of the default, interleaved"
                                                                      if default and default != config else ""))
        return interleaved_runs(run, config, default, samples, look)

    return measure


def _retune(entry: Entry, job: Job, path: Path, threshold: Threshold, state_dir: Path, trials: int, samples: int,
            llm: str) -> tuple[Entry, dict[str, Any]]:
    """A bounded re-tune (the real study loop), its best as a new entry, judged against the old baseline."""
    from tunesmith.agents.frontends.cli import _say
    from tunesmith.agents.study import drive, open_session, prepare_job
    from tunesmith.tools.ci.baseline import entry_from_study, job_path
    from tunesmith.tools.ci.check import Look, check_entry, decide

    rjob = prepare_job(job_path(entry, path), trials=trials)
    rjob = rjob.model_copy(update={"name": f"{job.name}.ci-retune"})
    _say(f"{entry.name}: re-tuning ({trials} trials, study {rjob.name!r})")
    with open_session(rjob, state_dir, llm_mode=llm, restart=True, job_path=str(job_path(entry, path))) as session:
        outcome = drive(session)
        fresh = entry_from_study(session.store, rjob.name, job_file=job_path(entry, path), baseline_path=path,
                                 name=entry.name)
        fp = session.target.fingerprint()
    first: Look = decide(Look(look=1, config=fresh.config, samples=fresh.performance.samples,
                              default_samples=(fresh.default_performance.samples if fresh.default_performance else []),
                              basis=f"look 1: the re-tune's samples ({fresh.basis}) vs the baseline file's"),
                         entry, threshold, min_effect=job.objective.min_effect)
    with _check_session(job, state_dir, restart=False) as session:
        judged = check_entry(entry, threshold, _measurer(session, entry.default_config, samples),
                             current_fingerprint=fp, min_effect=job.objective.min_effect, config=fresh.config,
                             first=first)
        session.store.set_status(session.study, "finished")
    summary = (f"best of {len(outcome.trials)} runs ({outcome.stop_reason}) is {fresh.config} at median "
               f"{fresh.performance.median:.4g} {fresh.metric}; against the old baseline: {judged.summary}")
    return fresh, {"study": rjob.name, "config": fresh.config, "outcome": judged.outcome, "summary": summary,
                   "looks": [lk.as_dict() for lk in judged.looks]}
