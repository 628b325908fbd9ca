"""Errors that reach the user as one line: what is wrong and how to fix it."""

from __future__ import annotations


class TunesmithError(Exception):
    """Base class of every error tunesmith reports to the user as one line.

    ``problem`` says what is wrong, ``fix`` says what to do about it; ``str()`` joins them.
    ``exit_code`` is the CLI exit code the error maps to.
    """

    exit_code = 2

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem.rstrip(".")
        self.fix = fix.rstrip(".")
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.problem}; fix: {self.fix}" if self.fix else self.problem


class JobError(TunesmithError):
    """The job file is malformed or names something that does not exist."""

    exit_code = 2


class StudyConflictError(TunesmithError):
    """The job definition changed under an existing study."""

    exit_code = 2


class InfrastructureError(TunesmithError):
    """The machinery (runner, store, LLM endpoint) failed, not the candidate."""

    exit_code = 4
