"""The chat's LLM path: the tools/ operations offered to the model with their schemas, through the one client.

The client returns validated structured output, so a tool call is a structured reply: ``{"tool": NAME,
"arguments": {...}}`` or ``{"tool": "answer", "answer": "..."}``, the tools' OpenAI function specs
(``openai_tool_specs``) in the system message. Where the rules already recognise the question ("compare 3
and 7"), the first reply's schema allows only that tool with its typed arguments: small models (SmolLM2)
seldom pick a tool on their own, so the choice is forced and the model fills in the arguments. Every call
runs through ``call_tool``, which validates the arguments and answers a bad call with a one-line error the
model sees. With ``on_chunk`` the final answer streams: the model says ``{"tool": "answer"}`` when it is ready,
and its words are then asked for as free text through ``LLMClient.stream_text``, each piece handed to
``on_chunk`` as it arrives (an answer the model already wrote into its JSON is returned whole).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from tunesmith.tools.operations import TOOLS, StoreReader, call_tool, openai_tool_specs

MAX_STEPS = 3
SYSTEM = """You are tunesmith's assistant. You answer questions about auto-tuning studies (trials, configurations,
measurements, the judge's verdicts) using ONLY what the tools return. Cite trials as #N and lessons by their
source in brackets. Be brief: two to four sentences.
Reply with JSON only: {{"tool": "<tool name>", "arguments": {{...}}}} to call a tool, or
{{"tool": "answer", "arguments": {{}}, "answer": "<your answer>"}} when you can answer.
The current study is {study}.
Tools (OpenAI function specs):
{specs}"""
STREAM_ANSWER = ('{"tool": "answer", "arguments": {}, "answer": "<your answer>"}',
                 '{"tool": "answer", "arguments": {}} (you will then be asked for the answer in plain words)')
AFTER_TOOL = "Answer the question now if you can (tool \"answer\"), citing trials as #N; else call another tool."
FINAL = "Answer the question now in plain words, citing trials as #N."


class ChatAction(BaseModel):
    """One step of the model: call a tool with arguments, or answer."""

    tool: Literal[tuple([*TOOLS, "answer"])]  # type: ignore[valid-type]
    arguments: dict[str, Any] = Field(default_factory=dict)
    answer: str = ""


def forced_action(tool: str) -> type[BaseModel]:
    """A reply schema that allows exactly one tool, with that tool's own typed arguments."""
    op = TOOLS[tool]
    return create_model(f"Call_{tool}", tool=(Literal[tool], ...), arguments=(op.input_model, ...))  # type: ignore[call-overload]


def system_message(study: str | None, *, streaming: bool = False) -> dict[str, str]:
    """The system message: the rules and every tool's spec (``streaming``: the answer follows as free text)."""
    specs = json.dumps(openai_tool_specs(), separators=(",", ":"))
    text = SYSTEM.format(study=json.dumps(study) if study else "not chosen yet", specs=specs)
    if streaming:
        text = text.replace(*STREAM_ANSWER)
    return {"role": "system", "content": text}


def ask(client: Any, store: StoreReader, question: str, *, study: str | None, forced: str | None = None,
        history: list[dict[str, str]] = (), on_tool: Callable[[str, dict[str, Any], str], None] | None = None,
        knowledge: Any = None, rule_args: dict[str, Any] | None = None,
        on_chunk: Callable[[str], None] | None = None) -> str:
    """Answer ``question`` with the model calling tools; ``forced`` is the tool the first reply must call, and
    ``rule_args`` the arguments the rules read from the question (they override the model's for that call).
    ``on_chunk``: the free-text answer streams, each piece passed to it as it arrives (see the module doc)."""
    streaming = on_chunk is not None
    messages = [system_message(study, streaming=streaming), *list(history)[-6:], {"role": "user", "content": question}]
    for step in range(MAX_STEPS):
        schema = forced_action(forced) if forced and step == 0 else ChatAction
        action = client.structured(messages, schema, purpose="chat", max_tokens=400)
        if action.tool == "answer":
            if action.answer.strip():
                return action.answer.strip()
            break
        args = action.arguments if isinstance(action.arguments, dict) else action.arguments.model_dump(exclude_unset=True)
        args = repair(store, action.tool, args, study)
        if action.tool == forced and rule_args:  # the numbers the user typed win over the model's reading of them
            args = {**args, **rule_args}
        result = call_tool(action.tool, args, store, knowledge=knowledge)
        if on_tool is not None:
            on_tool(action.tool, args, result)
        messages += [{"role": "assistant", "content": json.dumps({"tool": action.tool, "arguments": args})},
                     {"role": "user", "content": f"The tool {action.tool} returned: {result[:6000]}\n{AFTER_TOOL}"}]
    messages.append({"role": "user", "content": FINAL})
    if on_chunk is None:
        return client.chat(messages, purpose="chat", max_tokens=300).strip()
    return stream_answer(client, messages, on_chunk)


def stream_answer(client: Any, messages: list[dict[str, Any]], on_chunk: Callable[[str], None]) -> str:
    """Stream a free-text answer through ``client.stream_text``; leading blank space is held back."""
    parts: list[str] = []
    for piece in client.stream_text("chat", messages, max_tokens=300):
        if not parts and not piece.strip():
            continue
        piece = piece.lstrip() if not parts else piece
        parts.append(piece)
        on_chunk(piece)
    return "".join(parts).strip()


def repair(store: StoreReader, tool: str, args: dict[str, Any], study: str | None) -> dict[str, Any]:
    """A tool call's ``study`` argument, when missing or naming no study, becomes the chat's current study."""
    if study is None or "study" not in TOOLS[tool].input_model.model_fields:
        return args
    if tool == "search_knowledge" and not args.get("study"):
        return args  # optional there: leaving it out searches every study's lessons
    names = {s.name for s in store.studies()}
    return args if args.get("study") in names else {**args, "study": study}
