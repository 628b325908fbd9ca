"""Answers drawn from the study store through the tools/ operations, worded without an LLM.

Every answer cites the trials it speaks of (``#N``) and, for "why", the stored lessons it quotes
(``[reflection:STUDY]``, from ``search_knowledge``). Nothing here writes the store.
"""

from __future__ import annotations

import json
from typing import Any

from tunesmith.tools.operations import TOOLS, StoreReader, ToolError

from .intents import Intent


def run_tool(store: StoreReader, name: str, knowledge: Any = None, **args: Any) -> Any:
    """Call a tools/ operation with validated arguments; returns its output model (``knowledge``: the source
    ``search_knowledge`` asks, e.g. the knowledge store's retriever; None: the study store's lessons)."""
    op = TOOLS[name]
    return op(store, op.input_model.model_validate(args), knowledge)


def _cfg(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=False)


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def resolve_study(store: StoreReader, wanted: str | None, current: str | None) -> str:
    """The study a question is about: the one named, else the chat's current one, else the newest."""
    if wanted:
        store.study(wanted)  # a ToolError-like one line when unknown
        return wanted
    if current:
        return current
    live = [s for s in store.studies() if s.status != "archived"]
    if not live:
        raise ToolError("no studies yet", "describe a job with its command in backticks, e.g. tune `python bench.py --threads 4`")
    return max(live, key=lambda s: s.updated_at).name


def answer(store: StoreReader, intent: Intent, current: str | None, knowledge: Any = None) -> tuple[str, str | None]:
    """The text answering ``intent`` and the study it was about (None for list)."""
    if intent.kind == "list":
        rows = run_tool(store, "list_studies").studies
        if not rows:
            return "no studies yet; describe a job with its command in backticks to draft one", None
        return "studies: " + "; ".join(f"{s.name} ({s.status}, {s.trials} trials, {s.target})" for s in rows), None
    study = resolve_study(store, intent.args.get("study"), current)
    if intent.kind in ("status", "best"):
        return study_text(store, study, best_only=intent.kind == "best"), study
    if intent.kind == "show":
        return trial_text(store, study, intent.args["trial"]), study
    if intent.kind == "compare":
        out = run_tool(store, "compare_trials", study=study, a=intent.args["a"], b=intent.args["b"])
        diff = ", ".join(f"{k}: {v['value']} (#{out.a.number}) vs {v['reference']} (#{out.b.number})"
                         for k, v in out.config_diff.items()) or "same config"
        return (f"{study}: {out.summary}. medians {out.metric} #{out.a.number} {_num(out.a.median)} vs "
                f"#{out.b.number} {_num(out.b.median)}; differences: {diff}"), study
    if intent.kind == "why":
        return why_text(store, study, intent.args, knowledge), study
    raise ToolError(f"no rule answers {intent.kind!r}", "ask about list, status, best, show N, compare A B or why N")


def study_text(store: StoreReader, study: str, *, best_only: bool = False) -> str:
    """One study at a glance (``show_study``), or just its best configuration."""
    s = run_tool(store, "show_study", study=study)
    best = (f"best: trial #{s.best.number} {_cfg(s.best.config)} (median {s.objective.get('metric', '')} "
            f"{_num(s.best.median)})" if s.best else "best: none yet")
    if best_only:
        return f"{study}: {best}. {s.summary}"
    base = (f"default: trial #{s.baseline.number} {_cfg(s.baseline.config)} (median {_num(s.baseline.median)})"
            if s.baseline else "default: not measured yet")
    counts = ", ".join(f"{v} {k}" for k, v in s.counts_by_status.items())
    stop = f"; stopped: {s.stop_reason}" if s.stop_reason else ""
    return f"{study} ({s.status}{stop}): {s.trials} trials ({counts}). {base}; {best}. {s.summary}"


def trial_text(store: StoreReader, study: str, number: int) -> str:
    """What a trial tried, what it changed against the default, what was measured and the verdict."""
    t = run_tool(store, "show_trial", study=study, trial=number)
    changed = ", ".join(f"{k} {v['reference']} -> {v['value']}" for k, v in (t.diff_vs_default or {}).items())
    parts = [f"trial #{t.number} of {study} ({t.origin}): {_cfg(t.config)}",
             f"changed from the default: {changed}" if changed else "this is the default configuration"
             if t.diff_vs_default is not None else "no default trial to compare with"]
    if t.measurement:
        m = t.measurement
        parts.append(f"measured {m.status}: median {_num(m.median)} (IQR {_num(m.iqr)}, n={m.n})"
                     + (f" — {m.detail}" if m.status != "ok" and m.detail else ""))
    if t.verdict:
        parts.append(f"verdict: {t.verdict}" + (f" — {t.explanation}" if t.explanation else ""))
    if t.rationale:
        parts.append(f"why it was tried: {t.rationale}")
    return "; ".join(parts)


def why_text(store: StoreReader, study: str, args: dict[str, Any], knowledge: Any = None) -> str:
    """Why a trial (or the trial that set ``param`` to ``value``) was tried and judged as it was, with lessons."""
    number = args.get("trial")
    if number is None and args.get("param"):
        param, value = args["param"], str(args["value"]).lower()
        trials = store.trials(study)
        seen = sorted({str(t.candidate.config.get(param)) for t in trials if param in t.candidate.config})
        if not seen:
            names = sorted({k for t in trials for k in t.candidate.config})
            raise ToolError(f"study {study!r} has no knob {param!r}", f"ask about one of {', '.join(names) or 'its trials'}")
        match = [t for t in trials if str(t.candidate.config.get(param)).lower() == value]
        if not match:
            raise ToolError(f"no trial of {study!r} set {param} to {args['value']} (tried: {', '.join(seen)})",
                            f"ask about one of {', '.join(seen)}")
        number = match[0].number
    if number is None:
        s = run_tool(store, "show_study", study=study)
        number = s.best.number if s.best else 1
    t = run_tool(store, "show_trial", study=study, trial=number)
    text = trial_text(store, study, number)
    trail = [f"[{e.node}] {e.message}" for e in t.events if e.node in ("planner", "judge", "reflector", "confirm")][-3:]
    if trail:
        text += ". reasoning trail: " + " | ".join(trail)
    query = " ".join([*(t.diff_vs_default or {}).keys(), *map(str, t.config.values()), "helped failed"])
    hits = run_tool(store, "search_knowledge", knowledge, query=query, k=2).hits
    if hits:
        text += ". lessons: " + " | ".join(f"[{getattr(h, 'citation', '') or h.source}] {h.text[:200]}" for h in hits)
    return text
