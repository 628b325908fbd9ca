"""Study reports: best config, speedup over the default with its spread, every trial, the reasoning trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.secrets import redact
from tunesmith.runners.selection import (
    Rules,
    Speedup,
    baseline_trial,
    best_measured,
    best_trial,
    fastest_looking,
    study_result,
    verdict_records,
)
from tunesmith.runners.types import Trial

__all__ = ["baseline_trial", "best_measured", "best_trial", "best_measured_summary", "build_report",
           "describe_speedup", "fastest_summary", "render_markdown", "write_report"]


def best_measured_summary(trials: list[Trial], baseline: Trial | None, best: Trial | None, minimize: bool,
                          records: dict[int, Speedup] | None = None) -> dict[str, Any] | None:
    """The fastest-looking trial when the judge confirmed nothing better than it, with the comparison its
    verdict used (``records``, from the reasoning trail) or its first run against the default's."""
    return fastest_summary(*fastest_looking(trials, baseline, best, Rules(minimize=minimize), records))


def fastest_summary(top: Trial | None, sp: Speedup | None) -> dict[str, Any] | None:
    """The report's dict for the fastest-looking unconfirmed trial and the comparison its verdict used."""
    if top is None or sp is None:
        return None
    return {**sp.as_dict(), "number": top.number, "config": top.candidate.config,
            "verdict": top.verdict.value if top.verdict else None}


def describe_speedup(sp: Speedup, final: bool, metric: str, *, short: bool = False) -> str:
    """The one line a user reads about the best config against the default (CLI, report; ``short``: status)."""
    if short:
        caveat = "; not confirmed at the final re-measure" if final and sp.available and not sp.confirmed else ""
        versus = "default" if sp.against_default else f"trial #{sp.reference}"
        return f"best vs {versus}: {sp.interval()}, {sp.basis}{caveat}"
    if not sp.available:
        return f"speedup over {sp.versus()} unavailable: {sp.unavailable_reason}"
    sides = (f"{metric} median {sp.median:.4g} (IQR {sp.iqr:.2g}, n={sp.n}) vs {sp.reference_median:.4g} "
             f"(IQR {sp.reference_iqr:.2g}, n={sp.n_reference})")
    if final and not sp.confirmed:
        return (f"not confirmed at the final re-measure: {sp.interval()} over the default ({sp.basis}; {sides}); "
                "the best config is the judge's pick, with this caveat")
    return f"speedup over {sp.versus()}: {sp.interval()}, {sp.basis}; {sides}"


def build_report(store: StudyStore, study: str) -> dict[str, Any]:
    info = store.study(study)
    trials = store.trials(study)
    events = store.events(study)
    rules = Rules.from_definition(info.job)
    metric = str(info.job.get("objective", {}).get("metric", "metric"))
    result = study_result(trials, rules, verdict_records(events))
    best, baseline = result.best, result.baseline
    timed = any(t.measurement and t.measurement.samples for t in trials)
    fastest = fastest_summary(result.fastest, result.fastest_speedup)
    return {
        "study": info.name, "target": info.target, "status": info.status, "llm_mode": info.llm_mode,
        "objective": info.job.get("objective", {}), "created_at": info.created_at, "updated_at": info.updated_at,
        "timing_available": timed,
        "baseline": _trial_json(baseline) if baseline else None,
        "best": _trial_json(best) if best else None,
        "speedup": result.speedup.as_dict() if result.speedup else None,
        "speedup_line": describe_speedup(result.speedup, result.final, metric) if result.speedup else None,
        "final": result.final,
        "best_measured": fastest,
        "fingerprint": (baseline.measurement.fingerprint if baseline and baseline.measurement else {}),
        "trials": [_trial_json(t) for t in trials],
        "reflections": [r.model_dump() for r in store.reflections(study=study)],
        "events": events,
        "llm_usage": info.usage,
    }


def _trial_json(t: Trial) -> dict[str, Any]:
    m = t.measurement
    return {"number": t.number, "origin": t.candidate.origin, "config": t.candidate.config,
            "rationale": t.candidate.rationale, "state": t.state.value,
            "status": m.status.value if m else None, "median": m.median if m else None,
            "iqr": m.iqr if m else None, "n": len(m.samples) if m else 0, "detail": m.detail if m else "",
            "metrics": m.metrics if m else {}, "verdict": t.verdict.value if t.verdict else None,
            "explanation": t.explanation, "samples": m.samples if m else [], "notes": m.notes if m else []}


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def render_markdown(report: dict[str, Any]) -> str:
    obj = report["objective"]
    lines = [f"# tunesmith report: {report['study']}", "",
             f"- target: `{report['target']}`; objective: {obj.get('direction')} `{obj.get('metric')}`",
             f"- status: {report['status']}; LLM mode: {report['llm_mode'] or 'offline'}",
             f"- trials: {len(report['trials'])}", ""]
    if not report["timing_available"]:
        lines += ["**Timing unavailable**: every trial was checked for correctness only (e.g. no GPU: the Triton "
                  "interpreter runs kernels correctly but its timings rank nothing).", ""]
    best, base, sp = report["best"], report["baseline"], report["speedup"]
    lines += ["## Result", ""]
    if best:
        lines.append(f"Best configuration (trial #{best['number']}): `{json.dumps(best['config'])}`")
    if base:
        lines.append(f"Default configuration (trial #{base['number']}): `{json.dumps(base['config'])}`")
    if best and base and best["number"] == base["number"]:
        lines += ["", "No candidate beat the default by a confirmed margin: the default is the best confirmed "
                  "configuration."]
    elif sp and report["speedup_line"]:
        line = report["speedup_line"]
        lines += ["", f"**{line[0].upper()}{line[1:]}**."]
    top = report.get("best_measured")
    if top and top.get("speedup"):
        lines += ["", f"Fastest-looking trial, not confirmed by the judge: #{top['number']} `{json.dumps(top['config'])}` "
                  f"at {Speedup.from_dict(top).interval()} against {Speedup.from_dict(top).versus()} "
                  f"({top['basis']}; verdict {top['verdict']})."]
    lines += ["", "## Trials", "", "| # | origin | config | status | median | IQR | n | verdict | explanation |",
              "|---|---|---|---|---|---|---|---|---|"]
    for t in report["trials"]:
        cfg = ", ".join(f"{k}={v}" for k, v in t["config"].items())
        why = (t["explanation"] or t["detail"]).replace("|", "/")
        lines.append(f"| {t['number']} | {t['origin']} | {cfg} | {t['status']} | {_fmt(t['median'])} | "
                     f"{_fmt(t['iqr'])} | {t['n']} | {t['verdict'] or '–'} | {why} |")
    observed = [t for t in report["trials"] if t.get("notes")]  # observers' findings (runners/observers)
    if observed:
        lines += ["", "## Resource use", "", "What the observers saw per trial (CPU-bound or waiting on I/O, memory, disk):", ""]
        lines += [f"- #{t['number']}: {'; '.join(t['notes'])}" for t in observed]
    if report["reflections"]:
        lines += ["", "## Lessons stored", ""]
        lines += [f"- ({r['author']}, confidence {r['confidence']:.2f}) {r['insight']}" for r in report["reflections"]]
    lines += ["", "## Reasoning trail", ""]
    lines += [f"- `{e['ts']}` **{e['node']}**: {e['message']}" for e in report["events"]]
    if report["llm_usage"]:
        lines += ["", "## LLM usage", "", "```json", json.dumps(report["llm_usage"], indent=2), "```"]
    if report["fingerprint"]:
        lines += ["", "## Environment", "", "```json", json.dumps(report["fingerprint"], indent=2, default=str), "```"]
    return "\n".join(lines) + "\n"


def write_report(store: StudyStore, study: str, out_dir: Path) -> tuple[Path, Path]:
    report = build_report(store, study)
    out_dir.mkdir(parents=True, exist_ok=True)
    safe = study.replace("@", "_").replace(":", "")
    md, js = out_dir / f"{safe}.md", out_dir / f"{safe}.json"
    md.write_text(redact(render_markdown(report)), encoding="utf-8")
    js.write_text(redact(json.dumps(report, indent=2, default=str)), encoding="utf-8")
    return md, js
