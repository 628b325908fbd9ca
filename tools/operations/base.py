"""What a tool is: a named operation with a pydantic input model, a pydantic output model and a function.

Agents and front ends call the functions directly; an LLM calls them by name through ``call_tool`` with
JSON arguments, which are validated against the input model first. Every operation only reads the study
store, so calling one never changes a study.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from tunesmith.knowledge.study_store import StudyInfo
from tunesmith.runners.errors import TunesmithError
from tunesmith.runners.types import Reflection, Trial


class StoreReader(Protocol):
    """The read side of the study storage that the operations use (``StudyStore`` satisfies it)."""

    def studies(self) -> list[StudyInfo]: ...

    def study(self, name: str) -> StudyInfo: ...

    def trials(self, study: str, *, include_interrupted: bool = True) -> list[Trial]: ...

    def events(self, study: str) -> list[dict[str, Any]]: ...

    def reflections(self, *, study: str | None = None, workload_prefix: str | None = None) -> list[Reflection]: ...


class ToolInput(BaseModel):
    """Base of every operation's arguments: unknown fields are refused, so a misspelt argument is named."""

    model_config = ConfigDict(extra="forbid")


class ToolOutput(BaseModel):
    """Base of every operation's result."""


class ToolError(TunesmithError):
    """A tool was called with arguments that name nothing (no such study, no such trial)."""

    exit_code = 2


@dataclass(frozen=True)
class Operation:
    """One callable tool: ``func(store, args)`` (plus ``knowledge=`` where ``uses_knowledge``)."""

    name: str
    description: str
    input_model: type[ToolInput]
    output_model: type[ToolOutput]
    func: Callable[..., ToolOutput]
    uses_knowledge: bool = False

    def __call__(self, store: StoreReader, args: ToolInput, knowledge: Any = None) -> ToolOutput:
        if self.uses_knowledge:
            return self.func(store, args, knowledge=knowledge)
        return self.func(store, args)


def find_trial(store: StoreReader, study: str, number: int) -> Trial:
    """The study's trial with this number, or a ToolError naming the valid range."""
    trials = store.trials(study)
    for t in trials:
        if t.number == number:
            return t
    last = trials[-1].number if trials else 0
    fix = f"use a number from 1 to {last}" if last else "this study has no trials yet"
    raise ToolError(f"study {study!r} has no trial #{number}", fix)


def config_diff(config: dict[str, Any], reference: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Parameters whose value differs from ``reference``: name -> {"value", "reference"}."""
    keys = list(config) + [k for k in reference if k not in config]
    return {k: {"value": config.get(k), "reference": reference.get(k)}
            for k in keys if config.get(k) != reference.get(k)}


def minimizes(info: StudyInfo) -> bool:
    """Whether the study's objective is minimised (the stored job definition says)."""
    return info.job.get("objective", {}).get("direction", "minimize") == "minimize"


def min_effect(info: StudyInfo) -> float:
    return float(info.job.get("objective", {}).get("min_effect", 0.02))
