"""Structured output: how a pydantic schema is asked for per endpoint, and how the answer is read back.

Modes: ``json_schema`` (OpenAI's strict response_format), ``json_object`` (llama.cpp's
``{"type": "json_object", "schema": ...}``), ``prompt`` (the schema in the system prompt only).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

StructuredMode = Literal["json_schema", "json_object", "prompt"]
STRUCTURED_MODES: tuple[str, ...] = ("json_schema", "json_object", "prompt")

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def strict_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in OpenAI's strict form: closed objects, every property required."""
    root = copy.deepcopy(schema.model_json_schema())

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" or "properties" in node:
                node.setdefault("additionalProperties", False)
                node["required"] = list(node.get("properties", {}))
            if "default" in node and node["default"] is None:
                node.pop("default")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(root)
    return root


def response_format(mode: str, schema: type[BaseModel]) -> dict[str, Any] | None:
    """The ``response_format`` request field for ``mode`` (None for prompt mode)."""
    if mode == "json_schema":
        name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64] or "answer"
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": strict_schema(schema), "strict": True},
        }
    if mode == "json_object":
        return {"type": "json_object", "schema": schema.model_json_schema()}
    return None


def _type_of(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1] + " object"
    if "anyOf" in prop:
        return " or ".join(_type_of(p) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return "list of " + _type_of(prop.get("items", {}))
    return str(prop.get("type", "any value"))


def schema_instruction(schema: type[BaseModel]) -> str:
    """System-prompt text asking for one JSON object: a plain field list, plus the full schema if nested.

    Small models follow "name (type)" lists far better than raw JSON schema, so simple schemas get
    only the list; schemas with nested objects also get the JSON schema itself.
    """
    js = schema.model_json_schema()
    fields = []
    for name, prop in js.get("properties", {}).items():
        line = f"{name} ({_type_of(prop)})"
        if prop.get("description"):
            line += f": {prop['description']}"
        fields.append(line)
    text = "Reply with exactly one JSON object and nothing else (no prose, no code fences). "
    text += "Its fields: " + "; ".join(fields) + "."
    if "$defs" in js:
        text += " It must match this JSON schema: " + json.dumps(js, separators=(",", ":"))
    return text


def with_instruction(messages: list[dict[str, Any]], instruction: str) -> list[dict[str, Any]]:
    """A copy of ``messages`` with ``instruction`` appended to the system message (or a new one first)."""
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0].get('content') or ''}\n\n{instruction}".strip()
    else:
        out.insert(0, {"role": "system", "content": instruction})
    return out


def extract_json(text: str) -> Any:
    """The first JSON value in ``text``: fenced blocks first, then the first ``{`` or ``[`` that parses.

    Raises ``ValueError`` with a short reason when there is none.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for chunk in candidates:
        stripped = chunk.strip()
        for i, ch in enumerate(stripped):
            if ch not in "{[":
                continue
            try:
                value, _ = decoder.raw_decode(stripped, i)
            except json.JSONDecodeError:
                continue
            return value
    if not text.strip():
        raise ValueError("the reply was empty")
    raise ValueError("the reply contains no valid JSON object")


def parse_reply(text: str, schema: type[BaseModel]) -> BaseModel:
    """Validate ``text`` against ``schema``; raises ``ValueError`` with a feedback-ready reason."""
    value = extract_json(text)
    try:
        return schema.model_validate(value)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
            problems.append(f"{loc}: {err['msg']}")
        raise ValueError("; ".join(problems)) from None


def feedback(reason: str) -> str:
    """The user message sent back to the model after an invalid reply."""
    return (
        f"Your previous reply was not valid: {reason}. "
        "Reply again with only one JSON object that matches the schema exactly."
    )
