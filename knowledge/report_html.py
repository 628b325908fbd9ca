"""The study report as one self-contained HTML file: plots (plotly.js embedded once), the reasoning trail,
resource use and the environment, built from the same data as the Markdown and JSON (``report.build_report``)
and the same selection module (``runners/selection.py``). It opens offline.

The page template is a Jinja2 file the caller passes in (the front end reads ``prompts/report.html.j2``).
``optuna_study`` turns a study's trials into an Optuna study (parameter importance here, ``tune export``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tunesmith.knowledge.report import build_report
from tunesmith.knowledge.storage import StudyStorage
from tunesmith.runners import selection
from tunesmith.runners.secrets import redact
from tunesmith.runners.speedup import Rules
from tunesmith.runners.types import Trial

MIN_IMPORTANCE_TRIALS = 4  # fANOVA on fewer first runs says more about noise than about the parameters
PLOTS = ("history", "parallel", "importance", "spread", "timeline", "resources")


# -- Optuna -----------------------------------------------------------------------------------------------------
def distributions_from_values(trials: Sequence[Trial]) -> dict[str, Any]:
    """Optuna distributions covering the values the trials used (numbers as ranges, the rest as choices)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    values: dict[str, list[Any]] = {}
    for t in trials:
        for k, v in t.candidate.config.items():
            values.setdefault(k, []).append(v)
    out: dict[str, Any] = {}
    for name, vs in values.items():
        uniq = sorted(set(vs), key=str)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in uniq) and len(uniq) > 1:
            out[name] = IntDistribution(min(uniq), max(uniq))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in uniq) and len(uniq) > 1:
            out[name] = FloatDistribution(float(min(uniq)), float(max(uniq)))
        else:
            out[name] = CategoricalDistribution(uniq)
    return out


def optuna_study(trials: Sequence[Trial], *, minimize: bool, distributions: Mapping[str, Any] | None = None,
                 storage: Any = None, study_name: str | None = None, user_attrs: Mapping[str, Any] | None = None) -> Any:
    """An Optuna study holding the study's first runs: finished ones COMPLETE (value = median), failed ones FAIL.

    Each trial keeps tunesmith's number, origin, rationale, verdict, explanation and samples as user attrs.
    """
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    runs = [t for t in trials if selection.is_first_run(t) and t.measurement is not None]
    dists = dict(distributions or distributions_from_values(runs))
    study = optuna.create_study(direction="minimize" if minimize else "maximize", storage=storage,
                                study_name=study_name)
    for key, value in (user_attrs or {}).items():
        study.set_user_attr(key, value)
    for t in runs:
        m = t.measurement
        params = {k: v for k, v in t.candidate.config.items() if k in dists}
        timed = selection.is_timed(t)
        attrs = {"tunesmith_trial": t.number, "origin": t.candidate.origin, "rationale": redact(t.candidate.rationale),
                 "verdict": t.verdict.value if t.verdict else None, "explanation": redact(t.explanation),
                 "status": m.status.value, "samples": list(m.samples), "detail": redact(m.detail)}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: dists[k] for k in params},
            value=m.median if timed else None,
            state=optuna.trial.TrialState.COMPLETE if timed else optuna.trial.TrialState.FAIL,
            user_attrs=attrs))
    return study


def importance(trials: Sequence[Trial], minimize: bool) -> tuple[dict[str, float], str]:
    """Parameter importance (Optuna's fANOVA evaluator) and a sentence saying what it rests on, or why none."""
    timed = [t for t in trials if selection.is_first_run(t) and selection.is_timed(t)]
    if len(timed) < MIN_IMPORTANCE_TRIALS:
        return {}, (f"Parameter importance needs at least {MIN_IMPORTANCE_TRIALS} measured configurations; this "
                    f"study has {len(timed)}.")
    dists = {k: d for k, d in distributions_from_values(timed).items() if not d.single()}
    if not dists:
        return {}, "No parameter took more than one value, so none can be ranked."
    try:
        import optuna

        study = optuna_study(timed, minimize=minimize, distributions=dists)
        ranked = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError, ImportError) as exc:
        return {}, f"Parameter importance could not be computed ({type(exc).__name__}: {exc})."
    return dict(ranked), (f"fANOVA (Optuna's FanovaImportanceEvaluator, seed 0) over the medians of {len(timed)} "
                          "first runs: the share of the metric's variance each parameter explains.")


# -- figures ----------------------------------------------------------------------------------------------------
def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 380,
            "template": "plotly_white", **extra}


def _history(runs: list[Trial], metric: str, minimize: bool) -> dict[str, Any]:
    xs = [t.number for t in runs]
    ys = [t.measurement.median for t in runs]  # type: ignore[union-attr]
    best, line = None, []
    for y in ys:
        best = y if best is None or (y < best if minimize else y > best) else best
        line.append(best)
    wins = [t for t in runs if t.verdict is not None and t.verdict.value in ("better", "baseline")]
    data = [
        {"type": "scatter", "mode": "markers", "name": "median of a first run", "x": xs, "y": ys,
         "error_y": {"type": "data", "array": [t.measurement.iqr / 2 for t in runs], "visible": True},  # type: ignore[union-attr]
         "text": [json.dumps(t.candidate.config) for t in runs]},
        {"type": "scatter", "mode": "lines", "name": "best median so far", "x": xs, "y": line, "line": {"shape": "hv"}},
        {"type": "scatter", "mode": "markers", "name": "default / confirmed win", "x": [t.number for t in wins],
         "y": [t.measurement.median for t in wins], "marker": {"symbol": "star", "size": 14}},  # type: ignore[union-attr]
    ]
    return {"data": data, "layout": _layout("Optimisation history", xaxis={"title": {"text": "trial"}},
                                            yaxis={"title": {"text": f"{metric} (median, bar: IQR)"}})}


def _parallel(runs: list[Trial], metric: str) -> dict[str, Any] | None:
    names = list(dict.fromkeys(k for t in runs for k in t.candidate.config))
    if not names or len(runs) < 2:
        return None
    dims = []
    for name in names:
        vs = [t.candidate.config.get(name) for t in runs]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs):
            dims.append({"label": name, "values": vs})
        else:
            labels = sorted({str(v) for v in vs})
            dims.append({"label": name, "values": [labels.index(str(v)) for v in vs],
                         "tickvals": list(range(len(labels))), "ticktext": labels})
    ys = [t.measurement.median for t in runs]  # type: ignore[union-attr]
    dims.append({"label": metric, "values": ys})
    data = [{"type": "parcoords", "dimensions": dims,
             "line": {"color": ys, "colorscale": "Viridis", "showscale": True}}]
    layout = _layout("Parallel coordinates (first runs; colour: median)")
    layout["margin"] = {"l": 60, "r": 60, "t": 100, "b": 40}  # room for the axis labels under the title
    return {"data": data, "layout": layout}


def _importance(ranked: dict[str, float]) -> dict[str, Any] | None:
    if not ranked:
        return None
    names = list(ranked)[::-1]
    data = [{"type": "bar", "orientation": "h", "x": [ranked[n] for n in names], "y": names}]
    return {"data": data, "layout": _layout("Parameter importance (fANOVA)", xaxis={"title": {"text": "importance"}},
                                            yaxis={"automargin": True})}  # long parameter names stay whole


def _spread(sides: list[tuple[str, list[float]]], metric: str, basis: str) -> dict[str, Any] | None:
    sides = [(name, xs) for name, xs in sides if xs]
    if not sides:
        return None
    data = [{"type": "box", "name": name, "y": xs, "boxpoints": "all", "jitter": 0.3, "pointpos": 0}
            for name, xs in sides]
    return {"data": data, "layout": _layout(f"Best vs default: every sample ({basis})",
                                            yaxis={"title": {"text": metric}}, showlegend=False)}


def _timeline(trials: list[Trial]) -> dict[str, Any] | None:
    rows = []
    for t in trials:
        if not t.started_at:
            continue
        start = datetime.fromisoformat(t.started_at)
        wall = t.measurement.wall_s if t.measurement is not None else 0.0
        end = datetime.fromisoformat(t.finished_at) if t.finished_at else start
        seconds = max(wall if wall > 0 else (end - start).total_seconds(), 0.05)  # timestamps have 1 s steps
        rows.append((t, start, seconds))
    if not rows:
        return None
    data = []
    for origin in dict.fromkeys(t.candidate.origin for t, _, _ in rows):
        mine = [(t, s, d) for t, s, d in rows if t.candidate.origin == origin]
        data.append({"type": "bar", "orientation": "h", "name": origin, "y": [f"#{t.number}" for t, _, _ in mine],
                     "base": [s.isoformat() for _, s, _ in mine], "x": [d * 1000 for _, _, d in mine],
                     "text": [f"{d:.2f} s" for _, _, d in mine], "hoverinfo": "y+text+name"})
    height = max(300, 18 * len(rows) + 120)
    return {"data": data, "layout": _layout("Timeline of trials (start to end)", height=height, barmode="overlay",
                                            xaxis={"type": "date"}, yaxis={"autorange": "reversed", "type": "category"})}


def _resources(trials: list[Trial]) -> dict[str, Any] | None:
    used = [t for t in trials if t.measurement is not None and "res.cpu_fraction" in t.measurement.metrics]
    if not used:
        return None
    cores = max(t.measurement.metrics.get("res.cores", 1.0) for t in used)  # type: ignore[union-attr]
    data = [{"type": "bar", "name": "cores busy (CPU time / wall time)", "x": [f"#{t.number}" for t in used],
             "y": [t.measurement.metrics["res.cpu_fraction"] for t in used]},  # type: ignore[union-attr]
            {"type": "scatter", "mode": "lines", "name": f"cores available ({cores:g})",
             "x": [f"#{t.number}" for t in used], "y": [cores] * len(used), "line": {"dash": "dash"}}]
    return {"data": data, "layout": _layout("Resource use per trial: CPU-bound near the line, waiting (I/O, device) "
                                            "near zero", yaxis={"title": {"text": "cores busy"}})}


# -- the page ---------------------------------------------------------------------------------------------------
def html_context(store: StudyStorage, study: str) -> dict[str, Any]:
    """Everything the template shows: the report's data, the figures (plotly JSON or None) and their notes."""
    report = build_report(store, study)  # type: ignore[arg-type]
    trials = store.trials(study)
    rules = Rules.from_definition(store.study(study).job)
    metric = str(report["objective"].get("metric", "metric"))
    runs = [t for t in trials if selection.is_first_run(t) and selection.is_timed(t)]
    ranked, importance_note = importance(trials, rules.minimize)
    best, base = selection.best_trial(trials), selection.baseline_trial(trials)
    sides, basis = [], "first runs"
    if best is not None and base is not None:
        final = selection.final_runs(trials, best, base) if best.id != base.id else []
        if final:
            basis = "final re-measure, interleaved"
            sides = [(f"default (#{base.number})", [x for t in final if t.candidate.key == base.candidate.key
                                                    for x in t.measurement.samples]),  # type: ignore[union-attr]
                     (f"best (#{best.number})", [x for t in final if t.candidate.key == best.candidate.key
                                                 for x in t.measurement.samples])]  # type: ignore[union-attr]
        else:
            sides = [(f"default (#{base.number})", list(base.measurement.samples) if base.measurement else [])]
            if best.id != base.id:
                sides.append((f"best (#{best.number})", list(best.measurement.samples) if best.measurement else []))
    figures = {"history": _history(runs, metric, rules.minimize) if runs else None,
               "parallel": _parallel(runs, metric), "importance": _importance(ranked),
               "spread": _spread(sides, metric, basis), "timeline": _timeline(trials), "resources": _resources(trials)}
    notes = {"history": "" if runs else "No trial produced a timed measurement.",
             "parallel": "" if figures["parallel"] else "Parallel coordinates need at least two measured configurations.",
             "importance": importance_note, "spread": "" if figures["spread"] else "No default or best to compare.",
             "timeline": "", "resources": "" if figures["resources"] else
             "No observer recorded resource use (add \"resources\" to [measure] observers)."}
    by_trial = {t["number"]: t for t in report["trials"]}
    lessons: dict[int, list[str]] = {}
    for r in report["reflections"]:
        for n in r.get("evidence") or []:
            lessons.setdefault(n, []).append(r["insight"])
    plans = [e for e in report["events"] if e["node"] in ("planner", "plan")]
    trail = [{**by_trial[t.number], "reflections": lessons.get(t.number, [])} for t in trials]
    highlights = [(t["number"], note) for t in report["trials"] for note in t.get("notes") or []
                  if t["number"] in {best.number if best else -1, base.number if base else -1}]
    return {"report": report, "figures": {k: _script_json(v) if v else None for k, v in figures.items()},
            "notes": notes, "trail": trail, "plans": plans, "highlights": highlights,
            "environment": _flatten(report["fingerprint"]), "generated": datetime.now().astimezone().isoformat(
                timespec="seconds"), "plotly_js": _plotly_js()}


def render_html(store: StudyStorage, study: str, template: str) -> str:
    """The page, from ``template`` (Jinja2 text, HTML-escaped), redacted."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["config"] = lambda c: ", ".join(f"{k}={v}" for k, v in (c or {}).items())
    env.filters["num"] = lambda v: "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    ctx = html_context(store, study)
    plotly_js = ctx.pop("plotly_js")
    page = env.from_string(template).render(**ctx, plotly_js="@@PLOTLY_JS@@")
    return redact(page).replace("@@PLOTLY_JS@@", plotly_js)  # the library is code, not study text


def write_html_report(store: StudyStorage, study: str, out_dir: Path, template: str) -> Path:
    """Write ``<study>.html`` beside the Markdown and JSON reports; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{study.replace('@', '_').replace(':', '')}.html"
    path.write_text(render_html(store, study, template), encoding="utf-8")
    return path


def _script_json(fig: dict[str, Any]) -> str:
    """Plot JSON safe inside a <script type="application/json"> element."""
    return json.dumps(fig, default=str).replace("</", "<\\/")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in data.items():
        if isinstance(v, Mapping):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", "–" if v is None else str(v)))
    return out
