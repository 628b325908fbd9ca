"""The graph state: small, JSON-serialisable, checkpointed after every graph step (one per round)."""

from __future__ import annotations

from typing import Any, TypedDict


class StudyState(TypedDict, total=False):
    """What flows between planner, coder, run, judge and reflector.

    Candidates travel as dicts (``Candidate.model_dump``) so the SQLite checkpointer can store them;
    trials are referenced by id and read from the study store, which is the source of truth.
    """

    study: str
    round: int
    proposals: list[dict[str, Any]]  # planner -> coder
    queue: list[dict[str, Any]]  # coder -> run (validated candidates, re-measures included)
    finished: list[int]  # run -> judge: trial ids finished this round
    judged: list[int]  # judge -> reflector: trial ids with a verdict worth reflecting on
    comparisons: dict[str, dict[str, Any]]  # judge -> reflector: trial id (str) -> the Speedup its verdict used
    incumbent: int | None  # trial id of the best confirmed trial (the baseline at first)
    awaiting_confirmation: dict[str, int]  # challenger trial id (str) -> incumbent trial id
    stop_reason: str | None
