"""Study reports: best config, speedup over the default with its spread, every trial, the reasoning trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.secrets import redact
from tunesmith.runners.stats import compare
from tunesmith.runners.types import Trial, Verdict


def best_trial(trials: list[Trial]) -> Trial | None:
    """The confirmed best: the last trial the judge called better, else the baseline reference."""
    wins = [t for t in trials if t.verdict == Verdict.BETTER]
    if wins:
        return wins[-1]
    return next((t for t in trials if t.verdict == Verdict.BASELINE), None)


def best_measured(trials: list[Trial], minimize: bool) -> Trial | None:
    """The trial with the best median among timed, valid first measurements, confirmed or not."""
    timed = [t for t in trials if t.candidate.origin != "remeasure" and t.measurement is not None
             and t.measurement.ok and t.measurement.samples]
    if not timed:
        return None
    pick = min if minimize else max
    return pick(timed, key=lambda t: t.measurement.median)  # type: ignore[union-attr]


def baseline_trial(trials: list[Trial]) -> Trial | None:
    return next((t for t in trials if t.candidate.origin == "baseline" and t.measurement is not None), None)


def speedup_summary(best: Trial | None, baseline: Trial | None, minimize: bool) -> dict[str, Any] | None:
    """Speedup of best over baseline (>1 is better in either direction) with a 95 % bootstrap interval."""
    if best is None or baseline is None:
        return None
    b, d = best.measurement, baseline.measurement
    if not (b and d and b.samples and d.samples):
        return None
    cmp = compare(b.samples, d.samples, minimize=minimize)
    return {"speedup": cmp.speedup, "low": 1 + cmp.low, "high": 1 + cmp.high,
            "best_median": b.median, "best_iqr": b.iqr, "baseline_median": d.median, "baseline_iqr": d.iqr,
            "n_best": len(b.samples), "n_baseline": len(d.samples)}


def best_measured_summary(trials: list[Trial], baseline: Trial | None, best: Trial | None,
                        minimize: bool) -> dict[str, Any] | None:
    """The fastest-looking trial when the judge confirmed nothing better than it: its unconfirmed ratio."""
    top = best_measured(trials, minimize)
    if top is None or baseline is None or best is None or top.id in (best.id, baseline.id):
        return None
    return {"number": top.number, "config": top.candidate.config, "verdict": top.verdict.value if top.verdict else None,
            **(speedup_summary(top, baseline, minimize) or {})}


def build_report(store: StudyStore, study: str) -> dict[str, Any]:
    info = store.study(study)
    trials = store.trials(study)
    minimize = info.job.get("objective", {}).get("direction", "minimize") == "minimize"
    best, baseline = best_trial(trials), baseline_trial(trials)
    timed = any(t.measurement and t.measurement.samples for t in trials)
    return {
        "study": info.name, "target": info.target, "status": info.status, "llm_mode": info.llm_mode,
        "objective": info.job.get("objective", {}), "created_at": info.created_at, "updated_at": info.updated_at,
        "timing_available": timed,
        "baseline": _trial_json(baseline) if baseline else None,
        "best": _trial_json(best) if best else None,
        "speedup": speedup_summary(best, baseline, minimize) if not (best and baseline and best.id == baseline.id) else None,
        "best_measured": best_measured_summary(trials, baseline, best, minimize),
        "fingerprint": (baseline.measurement.fingerprint if baseline and baseline.measurement else {}),
        "trials": [_trial_json(t) for t in trials],
        "reflections": [r.model_dump() for r in store.reflections(study=study)],
        "events": store.events(study),
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
    elif sp:
        lines += ["", f"**Speedup over the default: {sp['speedup']:.3f}×** (95 % interval {sp['low']:.3f}–{sp['high']:.3f}); "
                  f"{obj.get('metric')} median {_fmt(sp['best_median'])} (IQR {_fmt(sp['best_iqr'])}, n={sp['n_best']}) vs "
                  f"{_fmt(sp['baseline_median'])} (IQR {_fmt(sp['baseline_iqr'])}, n={sp['n_baseline']})."]
    top = report.get("best_measured")
    if top and top.get("speedup"):
        lines += ["", f"Fastest-looking trial, not confirmed by the judge: #{top['number']} `{json.dumps(top['config'])}` "
                  f"at {top['speedup']:.3f}× (95 % interval {top['low']:.3f}–{top['high']:.3f}; verdict {top['verdict']})."]
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
