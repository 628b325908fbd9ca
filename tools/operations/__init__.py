"""tunesmith.tools.operations: the read-only operations agents, front ends and LLMs call as tools.

Each operation is a pydantic input model, a pydantic output model and a function ``fn(store, args)``.
``TOOLS`` maps a tool's name to its ``Operation``; adding one is a module with those three things and one
line here. ``openai_tool_specs()`` describes every tool in OpenAI's function-calling format, built from the
input models' JSON schemas; ``call_tool(name, arguments_json, store)`` validates the arguments, runs the
operation and returns its output as JSON. Every text that leaves ``call_tool`` goes through the secrets
redactor, and a bad call returns ``{"error": "..."}`` in one line that says what to fix, never raises.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from tunesmith.runners.errors import TunesmithError
from tunesmith.runners.secrets import redact, redact_obj

from .base import Operation, StoreReader, ToolError, ToolInput, ToolOutput
from .search import (
    KnowledgeHit,
    KnowledgeSource,
    ReflectionSource,
    SearchKnowledgeInput,
    SearchKnowledgeOutput,
    search_knowledge,
)
from .studies import (
    ListStudiesInput,
    ListStudiesOutput,
    ShowStudyInput,
    ShowStudyOutput,
    list_studies,
    show_study,
)
from .trial_tools import (
    CompareTrialsInput,
    CompareTrialsOutput,
    ShowTrialInput,
    ShowTrialOutput,
    compare_trials,
    show_trial,
)

_ALL = [
    Operation("list_studies", "List the tuning studies in the store with their target, status and trial count.",
              ListStudiesInput, ListStudiesOutput, list_studies),
    Operation("show_study", "Show one study: status, trial counts by status and verdict, the default, the best "
              "confirmed configuration and its speedup over the default with a 95 % interval.",
              ShowStudyInput, ShowStudyOutput, show_study),
    Operation("show_trial", "Show one trial: its config, how it differs from the default, its measurement, the "
              "judge's verdict and explanation, and the reasoning-trail events about it.",
              ShowTrialInput, ShowTrialOutput, show_trial),
    Operation("compare_trials", "Compare two trials of a study: config difference, medians and a bootstrap "
              "comparison of their samples (the judge's statistics) with a 95 % interval.",
              CompareTrialsInput, CompareTrialsOutput, compare_trials),
    Operation("search_knowledge", "Search the lessons learned by earlier studies (what helped, what failed) "
              "for a question, optionally within one domain (io, kernel, training) or study.",
              SearchKnowledgeInput, SearchKnowledgeOutput, search_knowledge, uses_knowledge=True),
]
TOOLS: dict[str, Operation] = {op.name: op for op in _ALL}


def openai_tool_specs() -> list[dict[str, Any]]:
    """Every tool as an OpenAI function-calling spec: ``{"type": "function", "function": {...}}``."""
    specs = []
    for op in TOOLS.values():
        schema = op.input_model.model_json_schema()
        schema.pop("title", None)
        schema.setdefault("properties", {})
        schema.setdefault("required", [])
        schema["additionalProperties"] = False
        specs.append({"type": "function",
                      "function": {"name": op.name, "description": op.description, "parameters": schema}})
    return specs


def call_tool(name: str, arguments_json: str | dict[str, Any] | None, store: StoreReader, *,
              knowledge: KnowledgeSource | None = None) -> str:
    """Run tool ``name`` with JSON ``arguments_json`` against ``store``; returns JSON, ``{"error": ...}`` on a bad call."""
    op = TOOLS.get(name)
    if op is None:
        return _error(f"unknown tool {name!r}; fix: call one of {', '.join(TOOLS)}")
    try:
        raw = json.loads(arguments_json or "{}") if isinstance(arguments_json, (str, bytes)) else (arguments_json or {})
    except json.JSONDecodeError as exc:
        return _error(f"{name}: arguments are not valid JSON ({exc.msg} at position {exc.pos}); fix: send a JSON object")
    if not isinstance(raw, dict):
        return _error(f"{name}: arguments must be a JSON object, got {type(raw).__name__}; fix: send {{...}}")
    try:
        args = op.input_model.model_validate(raw)
    except ValidationError as exc:
        return _error(f"{name}: {_validation_line(exc, op)}")
    try:
        result = op(store, args, knowledge)
    except TunesmithError as exc:
        return _error(f"{name}: {exc.line()}")
    return json.dumps(redact_obj(result.model_dump(mode="json")))


def _validation_line(exc: ValidationError, op: Operation) -> str:
    """Every problem (an unknown argument first: it often explains a missing one), then how to fix them."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[:3]
    problems, fixes = [], []
    for err in errors:
        field = ".".join(str(x) for x in err["loc"]) or "arguments"
        if err["type"] == "extra_forbidden":
            problems.append(f"{field}: unknown argument")
            fixes.append(f"use only {', '.join(op.input_model.model_fields)}")
        elif err["type"] == "missing":
            problems.append(f"{field}: required argument missing")
            fixes.append(f"give {field}")
        else:
            problems.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
            fixes.append(f"correct {field}")
    return f"{'; '.join(problems)}; fix: {' and '.join(dict.fromkeys(fixes))}"


def _error(line: str) -> str:
    return json.dumps({"error": " ".join(redact(line).split())})


__all__ = [
    "TOOLS", "Operation", "StoreReader", "ToolError", "ToolInput", "ToolOutput", "call_tool", "openai_tool_specs",
    "KnowledgeHit", "KnowledgeSource", "ReflectionSource", "list_studies", "show_study", "show_trial",
    "compare_trials", "search_knowledge",
]
