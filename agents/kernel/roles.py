"""The three LLM roles of kernel generation: planner, coder and judge (repair and optimise modes).

Each role is one structured call through the project's LLM client (``agents/llm/client.py``: validated
pydantic output, retries with the validation error fed back, token accounting under the role's purpose),
with its prompt in ``prompts/kernel_*.j2``. The coder sees the reference, the planner's approach, the
latest kernel and the judge's feedback on it, never the whole history of attempts.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from tunesmith.agents.prompting import render

MAX_SOURCE_CHARS = 8000  # longest kernel source put in a prompt (a small model's context is 4096 tokens)


class KernelApproach(BaseModel):
    """The planner's choice: fusion boundaries, tiling and reduction strategy."""

    fusion: str = Field(description="which ops fuse into one kernel and where kernels split")
    tiling: str = Field(description="how the work is tiled over Triton programs")
    reduction: str = Field(description="how reductions are done (or 'none')")
    notes: str = ""


class KernelDraft(BaseModel):
    """The coder's answer: a complete model_new.py and one sentence about it."""

    explanation: str = ""
    source: str = Field(description="the complete model_new.py")

    @field_validator("source")
    @classmethod
    def _code(cls, value: str) -> str:
        # Only the fence is taken off: whether the code is a working ModelNew is the evaluator's call.
        return strip_fences(value)


class Feedback(BaseModel):
    """The judge's one finding: the critical issue and its minimal fix (repair), or the bottleneck and one
    change (optimise)."""

    issue: str
    change: str


Mode = Literal["repair", "optimise"]


def strip_fences(text: str) -> str:
    """The code inside a Markdown fence when a model wrapped it in one; the text itself otherwise."""
    m = re.search(r"```(?:python|py)?\s*\n(.*?)```", text, re.S)
    return (m.group(1) if m else text).strip() + "\n"


def _clip(text: str, limit: int = MAX_SOURCE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "\n# ... (cut)\n"


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": render("system.j2")}, {"role": "user", "content": prompt}]


def plan_approach(client: Any, *, reference: str, graph: str = "", similar: list[dict[str, str]] | None = None,
                  lessons: list[str] | None = None) -> KernelApproach:
    """The planner: the approach for this reference, from its graph and retrieved similar kernels."""
    prompt = render("kernel_planner.j2", reference=_clip(reference), graph=graph, similar=similar or [],
                    lessons=lessons or [])
    return client.structured(_messages(prompt), KernelApproach, purpose="kernel_planner", max_tokens=400)


def write_kernel(client: Any, *, reference: str, approach: KernelApproach, latest: str | None = None,
                 latest_status: str = "", feedback: Feedback | None = None, feedback_mode: Mode = "repair",
                 max_tokens: int = 2500) -> KernelDraft:
    """The coder: a complete model_new.py from the reference, the approach, the latest kernel and the feedback."""
    prompt = render("kernel_coder.j2", reference=_clip(reference), approach=approach,
                    latest=_clip(latest) if latest else "", latest_status=latest_status, feedback=feedback,
                    feedback_mode=feedback_mode)
    return client.structured(_messages(prompt), KernelDraft, purpose="kernel_coder", max_tokens=max_tokens)


def judge_repair(client: Any, *, reference: str, source: str, status: str, detail: str,
                 max_abs_err: float | None = None) -> Feedback:
    """The judge in repair mode: from a compile error, runtime error or wrong answer, the one issue and its fix."""
    prompt = render("kernel_judge_repair.j2", reference=_clip(reference), source=_clip(source), status=status,
                    detail=detail, max_abs_err=max_abs_err)
    return client.structured(_messages(prompt), Feedback, purpose="kernel_judge", max_tokens=300)


def judge_optimise(client: Any, *, source: str, timing: str, profile: str = "",
                   metrics: dict[str, float] | None = None) -> Feedback:
    """The judge in optimise mode: from timings and the Nsight Compute summary, one bottleneck and one change.

    ``metrics`` (the evaluation's, ``ncu.*`` among them) add the profile summary's features and bottleneck."""
    from tunesmith.knowledge.profiles import judge_profile_line

    profile = "\n".join(p for p in (profile, judge_profile_line(metrics or {})) if p)
    prompt = render("kernel_judge_optimise.j2", source=_clip(source), timing=timing, profile=profile)
    return client.structured(_messages(prompt), Feedback, purpose="kernel_judge", max_tokens=300)
