"""From a manual to parameters: extraction over a stored manual, and a job's space taken from it.

``manual_params`` reads an ingested manual back from the store, runs the rule-based extractors (and an
LLM, when one is given, whose answers are verified against their citations) and ties every parameter to
the chunk holding its first line. ``apply_manual_space`` turns a job's ``[space] from_manual = "SOURCE"``
and ``select = [...]`` into ``[workload.params]`` of the command target: kind, default, choices and help
(with the citation) come from the manual; the job's own ``[workload.params.NAME]`` fields complete or
override them (a manual rarely states a range, so numeric parameters need the job's low and high).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tunesmith.knowledge.vector.store import KnowledgeStore
from tunesmith.runners.errors import JobError
from tunesmith.runners.job import Job

from .documents import ManualError
from .ingest import load_document
from .llm_extract import Ask, extract_with_llm
from .params import ManualParam, extract_rules


@dataclass
class ParamReport:
    """The parameters a manual yields, and those an LLM proposed that their citation did not support."""

    source: str
    params: list[ManualParam] = field(default_factory=list)
    rejected: list[tuple[ManualParam, list[str]]] = field(default_factory=list)


def manual_params(store: KnowledgeStore, source: str, ask: Ask | None = None) -> ParamReport:
    """Every parameter of the ingested manual ``source`` with its citation (chunk id and lines)."""
    doc, records = load_document(store, source)
    params = extract_rules(doc)
    report = ParamReport(source)
    if ask is not None:
        llm, report.rejected = extract_with_llm(doc, ask)
        known = {p.name for p in params}
        params += [p for p in llm if p.name not in known]
    for p in params:
        holder = next((r for r in records if int(r.metadata["line_start"]) <= p.line <= int(r.metadata["line_end"])), None)
        p.chunk = holder.id if holder is not None else ""
    report.params = sorted(params, key=lambda p: p.line)
    return report


def param_key(name: str) -> str:
    """A manual's option name as a job parameter name: ``performance.write-behind`` -> ``performance_write_behind``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_")


def param_fields(p: ManualParam) -> dict[str, Any]:
    """The ``[workload.params]`` fields a manual entry supports (no invented range)."""
    cite = f"[{p.source} line {p.line}{f'-{p.line_end}' if p.line_end > p.line else ''}]"
    fields: dict[str, Any] = {"help": f"{p.description[:200]} {cite}".strip()}
    truthy = ("on", "true", "yes", "enable")
    if p.type == "bool":
        if p.default is not None and p.default.lower() in ("on", "off") and not p.apply.endswith(f"--{p.name}"):
            fields.update(kind="choice", values=["on", "off"], default=p.default.lower())  # written as on/off
        else:
            fields.update(kind="bool", default=(p.default or "false").lower() in truthy)
    elif p.type == "choice" and p.choices:
        fields.update(kind="choice", values=list(p.choices))
        if p.default in p.choices:
            fields["default"] = p.default
    elif p.type in ("int", "float"):
        fields["kind"] = p.type
        if p.default is not None:
            fields["default"] = int(p.default) if p.type == "int" else float(p.default)
        if p.low is not None and p.high is not None:
            fields.update(low=p.low, high=p.high)
    return fields


def apply_manual_space(job: Job, store: KnowledgeStore | None = None) -> Job:
    """The job with ``[space] from_manual`` resolved into the command target's ``[workload.params]``."""
    ms = getattr(job, "manual_space", None)
    if ms is None:
        return job
    if job.target != "command":
        raise JobError(f"space.from_manual: the {job.target} target has its own parameters",
                       'use from_manual with target = "command"')
    if not ms.select:
        raise JobError("space.select: no parameters chosen from the manual",
                       f"list them, e.g. select = [...] (see `tune knowledge params {ms.source}`)")
    if store is None:
        store = KnowledgeStore(job.resolve(ms.knowledge_dir) if ms.knowledge_dir else None)
    try:
        found = {p.name: p for p in manual_params(store, ms.source).params}
    except ManualError as exc:
        raise JobError(f"space.from_manual: {exc.problem}", exc.fix) from None
    own = dict(job.workload.get("params") or {})
    params: dict[str, Any] = {}
    for name in ms.select:
        p = found.get(name)
        if p is None:
            close = [n for n in found if name.replace("_", "-") in n.replace("_", "-")][:5]
            raise JobError(f"space.select: {name!r} is not a parameter of manual {ms.source!r}",
                           f"use one of {', '.join(close) if close else 'the names `tune knowledge params` prints'}")
        key = param_key(name)
        merged = {**param_fields(p), **own.pop(key, {})}
        if merged.get("kind") in ("int", "float", None) and ("low" not in merged or "high" not in merged) \
                and "values" not in merged:
            raise JobError(f"space.select: {name!r} ({ms.source} line {p.line}) states no range to search",
                           f"give [workload.params.{key}] low and high, or values")
        merged.setdefault("kind", "choice" if "values" in merged else "int")
        params[key] = merged
    params.update(own)  # the job's other parameters stay
    return job.model_copy(update={"workload": {**job.workload, "params": params}})
