"""The study store's interface: what the agents, tools, reports and CLI may ask of it.

Everything outside the store talks to this interface only, so another backend (a server database that
several machines share for one study) can replace the SQLite file without touching the callers. An
implementation must pass ``tests/test_study_store.py``'s conformance tests.

Semantics every implementation keeps:

- write before you act: ``start_trial`` stores a trial as ``running`` before its candidate starts;
- one writer per study: ``lock`` is exclusive across processes and is taken before anything changes;
- ``recover`` marks trials left ``running`` by a dead writer as failed and ``interrupted``;
- a changed job definition under an existing name is refused by ``open_study`` (``StudyConflictError``);
- a read-only store (``tune list/status/report``) never writes;
- a damaged or foreign store raises ``InfrastructureError`` with one line, never a driver exception.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel

from tunesmith.runners.errors import JobError
from tunesmith.runners.job import Job
from tunesmith.runners.types import Candidate, Measurement, Reflection, Trial, Verdict

_NAME = re.compile(r"\w[\w.+-]{0,119}")


def check_study_name(name: str, source: str = "job") -> None:
    """Refuse a study name that is not a plain file name (it names lock files, scratch and report folders).

    ``@`` is kept for archived studies (``name@<timestamp>``).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise JobError(f"{source}: name: {name!r} cannot name a study (it becomes file and folder names)",
                       "use up to 120 letters, digits, '_', '-', '.' or '+', starting with a letter, digit or '_'")


class StudyInfo(BaseModel):
    """A row of the studies table."""

    name: str
    target: str
    definition_hash: str
    status: str
    created_at: str
    updated_at: str
    llm_mode: str = ""
    usage: dict[str, Any] = {}
    job_path: str = ""
    job: dict[str, Any] = {}


class StudyStorage(ABC):
    """Durable record of studies, trials, events, reflections and LLM usage (see the module docstring)."""

    read_only: bool = False

    @abstractmethod
    def close(self) -> None:
        """Release the writer locks and the connection; the store is unusable afterwards."""

    # -- studies ---------------------------------------------------------------------------------------
    @abstractmethod
    def lock(self, study: str) -> None:
        """Take the study's writer lock or raise ``InfrastructureError`` naming the holder."""

    @abstractmethod
    def lock_holder(self, study: str) -> int | None:
        """The pid of the process holding the study's writer lock, or None when nobody runs it."""

    @abstractmethod
    def open_study(self, job: Job, *, job_path: str = "") -> tuple[StudyInfo, bool]:
        """Create the study or resume it; returns (info, resumed). Refuses a changed job definition."""

    @abstractmethod
    def archive(self, name: str) -> str:
        """Rename a study and its rows to ``name@<timestamp>``, keeping the data; returns the new name."""

    @abstractmethod
    def study(self, name: str) -> StudyInfo:
        """One study, or ``StudyConflictError`` when there is none of that name."""

    @abstractmethod
    def studies(self) -> list[StudyInfo]:
        """Every study, oldest first."""

    @abstractmethod
    def set_status(self, name: str, status: str, *, llm_mode: str | None = None) -> None:
        """Record the study's status (running, finished, interrupted, failed, archived)."""

    @abstractmethod
    def save_usage(self, name: str, usage: dict[str, Any]) -> None:
        """Store the study's LLM usage (tokens, cost) so a resumed study keeps counting."""

    # -- trials ----------------------------------------------------------------------------------------
    @abstractmethod
    def recover(self, study: str) -> list[Trial]:
        """Mark trials left running by a dead process as failed and interrupted; return them."""

    @abstractmethod
    def start_trial(self, study: str, candidate: Candidate) -> Trial:
        """Store the trial as running (before it starts) and return it with its number."""

    @abstractmethod
    def finish_trial(self, trial_id: int, measurement: Measurement) -> Trial:
        """Store the trial's measurement (done when ok, failed otherwise) and return it."""

    @abstractmethod
    def set_verdict(self, trial_id: int, verdict: Verdict, explanation: str) -> None:
        """Store the judge's verdict and its explanation."""

    @abstractmethod
    def trial(self, trial_id: int) -> Trial:
        """One trial by id."""

    @abstractmethod
    def trial_by_number(self, study: str, number: int) -> Trial | None:
        """One trial by its number inside the study, or None."""

    @abstractmethod
    def trials(self, study: str, *, include_interrupted: bool = True) -> list[Trial]:
        """Every trial of the study in number order."""

    @abstractmethod
    def trials_since(self, study: str, after_id: int, *, include_interrupted: bool = True,
                     limit: int | None = None) -> list[Trial]:
        """The study's trials with an id above ``after_id`` in id order (at most ``limit``)."""

    @abstractmethod
    def count_trials(self, study: str) -> int:
        """How many trials the study has (interrupted ones included)."""

    @abstractmethod
    def finished(self, study: str, key: str) -> Trial | None:
        """The first finished, not interrupted trial of this candidate key, if any."""

    # -- events and reflections ------------------------------------------------------------------------
    @abstractmethod
    def add_event(self, study: str, node: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Append to the study's reasoning trail."""

    @abstractmethod
    def events(self, study: str) -> list[dict[str, Any]]:
        """The reasoning trail in order: ts, node, message, data."""

    @abstractmethod
    def add_reflection(self, reflection: Reflection) -> None:
        """Store a lesson learned."""

    @abstractmethod
    def reflections(self, *, study: str | None = None, workload_prefix: str | None = None,
                    limit: int | None = None) -> list[Reflection]:
        """Lessons, of one study or of workloads whose signature starts with ``workload_prefix``, oldest
        first (at most ``limit``)."""
