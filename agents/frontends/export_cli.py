"""`tune export STUDY --optuna URL`: write a study's trials into an Optuna storage (optuna-dashboard opens it).

Each first run of a config becomes an Optuna trial: COMPLETE with its median as the value, or FAIL; its
parameters carry distributions from the job's search space (from the values seen where the space cannot be
rebuilt), and its rationale, verdict, explanation, status and raw samples are user attributes. Re-measures
and the final interleaved runs are repeats of those configs and are not exported as trials; the study's
reported speedup is a study user attribute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add `tune export` to the command line."""
    from tunesmith.agents.frontends.cli import DEFAULT_STATE

    @app.command("export")
    def export(
        study: Annotated[str, typer.Argument(help="study name (see `tune list`)")],
        optuna: Annotated[str, typer.Option("--optuna", help="Optuna storage URL, e.g. sqlite:///study.db")],
        study_name: Annotated[str | None, typer.Option(help="the Optuna study's name (default: STUDY)")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an Optuna study of that name")] = False,
        state_dir: Annotated[Path, typer.Option("--state-dir", help="where studies, checkpoints and scratch "
                                                "live")] = DEFAULT_STATE,
    ) -> None:
        """Write STUDY's trials to an Optuna storage so optuna-dashboard can open it."""
        from tunesmith.agents.frontends.cli import _open_store, _reading, _say

        with _reading(state_dir):
            store = _open_store(state_dir)
            try:
                n, name, note = export_optuna(store, study, optuna, study_name or study, overwrite=overwrite)
            finally:
                store.close()
            if note:
                _say(note)
            _say(f"exported {n} trials of {study} to {optuna} (Optuna study {name!r}); open it with "
                 f"`optuna-dashboard {optuna}`")


def export_optuna(store: Any, study: str, url: str, name: str, *, overwrite: bool = False) -> tuple[int, str, str]:
    """Write ``study`` into the Optuna storage at ``url``; returns (trials written, study name, a note or "")."""
    import optuna
    from sqlalchemy.exc import ArgumentError, OperationalError

    from tunesmith.knowledge.report import build_report
    from tunesmith.knowledge.report_html import optuna_study
    from tunesmith.runners.errors import TunesmithError
    from tunesmith.runners.speedup import Rules

    info = store.study(study)
    trials = store.trials(study)
    dists, note = _distributions(info, trials)
    try:
        storage = optuna.storages.RDBStorage(url)
    except (ArgumentError, OperationalError, ValueError, ImportError) as exc:
        raise TunesmithError(f"--optuna {url}: not a usable Optuna storage ({' '.join(str(exc).split())[:200]})",
                             "pass an SQLAlchemy URL such as sqlite:///study.db in a folder that exists") from None
    if name in {s.study_name for s in optuna.study.get_all_study_summaries(storage)}:
        if not overwrite:
            raise TunesmithError(f"{url} already holds an Optuna study named {name!r}",
                                 "pass --overwrite to replace it, or --study-name NAME")
        optuna.delete_study(study_name=name, storage=storage)
    report = build_report(store, study)
    attrs = {"tunesmith_study": study, "target": info.target, "metric": report["objective"].get("metric"),
             "speedup": report["speedup_line"] or "", "best_trial": (report["best"] or {}).get("number"),
             "default_trial": (report["baseline"] or {}).get("number")}
    out = optuna_study(trials, minimize=Rules.from_definition(info.job).minimize, distributions=dists,
                       storage=storage, study_name=name, user_attrs=attrs)
    return len(out.trials), name, note


def _distributions(info: Any, trials: list[Any]) -> tuple[dict[str, Any], str]:
    """Optuna distributions from the job's search space; from the values seen where that cannot be rebuilt."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from tunesmith.knowledge.report_html import distributions_from_values
    from tunesmith.runners.errors import TunesmithError
    from tunesmith.runners.job import parse_job
    from tunesmith.tools.plugins import TARGETS

    seen = distributions_from_values(trials)
    try:
        base = Path(info.job_path).resolve().parent if info.job_path else Path(".")
        job = parse_job({**info.job, "name": info.name.split("@")[0]}, base_dir=base)
        space = TARGETS.create(info.target, job).space()
    except (TunesmithError, ValueError, OSError, ImportError) as exc:
        return seen, f"note: the search space could not be rebuilt ({exc}); distributions cover the values tried"
    out: dict[str, Any] = {}
    for p in space.params:
        if p.kind == "choice":
            out[p.name] = CategoricalDistribution(list(p.values))
        elif p.kind == "bool":
            out[p.name] = CategoricalDistribution([False, True])
        elif p.kind in ("int", "pow2"):
            out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.kind == "pow2", step=1)  # type: ignore[arg-type]
        else:
            out[p.name] = FloatDistribution(float(p.low), float(p.high), log=p.kind == "log_float")  # type: ignore[arg-type]
    for name, dist in seen.items():  # a value outside the space (an old default, a narrowed range) keeps the trial
        values = {t.candidate.config[name] for t in trials if name in t.candidate.config}
        if name not in out or not all(_contains(out[name], v) for v in values):
            out[name] = dist
    return out, ""


def _contains(dist: Any, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False
