"""``tune ci``'s outputs: ``ci-report.md`` (ready to post on a pull request), ``ci-report.json`` and a
benchmark file in github-action-benchmark's format (``customSmallerIsBetter`` / ``customBiggerIsBetter``:
a list of ``{name, unit, value, range, extra}``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.runners.secrets import redact

from .check import EntryResult, change_text, exit_code

VERDICT = {0: "passed", 1: "REGRESSION", 3: "CORRECTNESS FAILURE", 4: "INFRASTRUCTURE UNAVAILABLE"}
ICON = {"ok": "ok", "not compared": "not compared", "regression": "**regression**",
        "correctness": "**correctness failure**", "infrastructure": "**infrastructure failure**"}


def _f(v: float | None) -> str:
    return "–" if v is None else f"{v:.4g}"


def render_markdown(results: list[EntryResult], *, baseline_file: str, machine: str, candidate: str | None) -> str:
    """The pull-request comment: verdict, one table row per entry, the intervals, the re-tunes."""
    code = exit_code(results)
    lines = [f"## tunesmith CI: {VERDICT.get(code, 'failed')}", "",
             f"Baseline `{baseline_file}`, measured on {machine}. Exit code {code}.", "",
             "| entry | config | baseline median (IQR, n) | now median (IQR, n) | change | ratio, 95 % interval | "
             "threshold | verdict |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        e, look = r.entry, (r.looks[-1] if r.looks else None)
        cfg = ", ".join(f"{k}={v}" for k, v in e.config.items())
        base = f"{_f(e.performance.median)} ({_f(e.performance.iqr)}, {e.performance.n})"
        now = f"{_f(look.median)} ({_f(look.iqr)}, {len(look.samples)})" if look and look.samples else "–"
        loss = change_text(look.loss if look else None, r.threshold, e.metric)
        ratio = look.comparison.interval() if look and look.comparison else "–"
        lines.append(f"| {e.name} | `{cfg}` | {base} {e.metric} | {now} | {loss} | {ratio} | "
                     f"`{r.threshold.text}` | {ICON.get(r.outcome, r.outcome)} |")
    lines += ["", "### Details", ""]
    for r in results:
        lines.append(f"- **{r.entry.name}**: {r.summary}")
        for lk in r.looks:
            if lk.now_vs_default is not None:
                lines.append(f"  - look {lk.look}: against the default measured alongside it: "
                             f"{lk.now_vs_default.interval()}")
        if r.baseline_vs_default is not None:
            lines.append(f"  - in the baseline file, against the default: {r.baseline_vs_default.interval()} "
                         f"({r.entry.basis or 'baseline samples'})")
        if r.retune:
            lines.append(f"  - re-tune: {r.retune.get('summary', '')}")
    if candidate:
        lines += ["", f"A new baseline candidate was written to `{candidate}`: review it and commit it in place of "
                  f"`{baseline_file}` if the re-tuned configs are what you want."]
    lines += ["", "<sub>Ratios are speedups over the baseline file's samples (below 1: slower now), a bootstrap of the "
              "ratio of medians; a regression needs the threshold exceeded and the whole interval beyond it, on a "
              "re-measure too.</sub>"]
    return "\n".join(lines) + "\n"


def benchmark_entries(results: list[EntryResult], *, minimize: bool) -> list[dict[str, Any]]:
    """github-action-benchmark's custom format for the entries of one direction (measured ones only)."""
    out = []
    for r in results:
        look = r.looks[-1] if r.looks else None
        if r.entry.minimize != minimize or look is None or not look.samples:
            continue
        extra = f"config: {json.dumps(r.entry.config)}\noutcome: {r.outcome}\nn: {len(look.samples)}"
        out.append({"name": r.entry.name, "unit": r.entry.metric, "value": look.median,
                    "range": f"± {look.iqr / 2:.4g}", "extra": extra})  # type: ignore[operator]
    return out


def write_outputs(results: list[EntryResult], out_dir: Path, *, baseline_file: str, machine: str,
                  candidate: str | None) -> dict[str, Path]:
    """Write ci-report.md, ci-report.json and the benchmark file(s); returns their paths by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "ci-report.md", "json": out_dir / "ci-report.json",
             "benchmark": out_dir / "ci-benchmark.json"}
    paths["markdown"].write_text(redact(render_markdown(results, baseline_file=baseline_file, machine=machine,
                                                        candidate=candidate)), encoding="utf-8")
    report = {"exit_code": exit_code(results), "baseline_file": baseline_file, "machine": machine,
              "candidate": candidate, "entries": [r.as_dict() for r in results]}
    paths["json"].write_text(redact(json.dumps(report, indent=2, default=str)), encoding="utf-8")
    paths["benchmark"].write_text(json.dumps(benchmark_entries(results, minimize=True), indent=2), encoding="utf-8")
    bigger = benchmark_entries(results, minimize=False)
    if bigger:
        paths["benchmark_bigger"] = out_dir / "ci-benchmark-bigger.json"
        paths["benchmark_bigger"].write_text(json.dumps(bigger, indent=2), encoding="utf-8")
    return paths
