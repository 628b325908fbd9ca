"""Coder node: turns proposals into runnable candidates, rejecting what cannot run before it runs.

For config targets the coder completes and coerces configs and applies the one admissibility check
(``tunesmith.runners.admissibility``: ranges, constraints, the target's own checks and predictions) that
the strategies also use when they propose. Code-writing targets (those with an ``author(candidate)``
method, such as the ``kernel`` target) get the candidate's source written here, before the admissibility
check, so the target's checks see the code and the candidate's key covers it. Such a target's ``author``
must be a function of the config alone; strategies, which propose configs, then see its trials without
their source (``ConfigView``), so a config tried once counts as tried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.admissibility import admissible
from tunesmith.runners.errors import TunesmithError
from tunesmith.runners.types import Candidate, Measurement, Status, Trial


def code(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """Validate proposals; inadmissible ones are stored as ``constraints`` trials and not run.

    Such a rejection is kept for the record (strategies see it as tried) but does not spend the trial
    budget (see ``tunesmith.agents.budget.rejected_before_running``).
    """
    queue: list[dict[str, Any]] = []
    space = session.target.space()
    if getattr(session.target, "author", None) is not None and not isinstance(session.strategy, ConfigView):
        session.strategy = ConfigView(session.strategy)  # type: ignore[assignment]
    for raw in state.get("proposals", []):
        proposed = Candidate.model_validate(raw)
        proposed, why = authored(session, proposed)
        if why:
            _reject(session, proposed, why)
            continue
        verdict = admissible(proposed, space, session.target)
        cand = verdict.candidate or proposed
        if not verdict.ok:
            _reject(session, cand, verdict.why)
            continue
        if cand.origin != "remeasure" and session.store.finished(session.study, cand.key):
            session.emit("coder", f"skipping {cand.key}: already measured in this study")
            continue
        queue.append(cand.model_dump(exclude={"key"}))
    if queue:
        session.emit("coder", f"{len(queue)} candidate(s) ready to run")
    return {"queue": queue, "proposals": []}


def authored(session: TuningSession, cand: Candidate) -> tuple[Candidate, str]:
    """The candidate with its source written by a code-writing target, and why it could not be ("" if it could).

    The config is completed by the space first (the source is rendered from the full config); a candidate
    that already carries source (a re-measure, an LLM-written kernel) is left as it is.
    """
    author = getattr(session.target, "author", None)
    if author is None or cand.source is not None:
        return cand, ""
    fitted = admissible(cand, session.target.space())
    if fitted.candidate is None:
        return cand, fitted.why
    try:
        return author(fitted.candidate), ""
    except TunesmithError as exc:
        return fitted.candidate, f"could not write its source: {exc.line()}"
    except Exception as exc:  # noqa: BLE001 - a template that cannot render this config rejects it, not the study
        return fitted.candidate, f"could not write its source: {type(exc).__name__}: {str(exc)[:200]}"


class ConfigView:
    """A strategy that sees a code-writing target's trials by their configs (the source left out).

    The target writes each source from its config, so the config is what the strategy chose and what it
    must recognise as tried; everything else is the wrapped strategy's own.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        """The wrapped strategy's proposals for the history with every trial's source left out."""
        return self.inner.ask([_config_only(t) for t in history], n)


def _config_only(trial: Trial) -> Trial:
    if trial.candidate.source is None:
        return trial
    return trial.model_copy(update={"candidate": trial.candidate.model_copy(update={"source": None})})


def _reject(session: TuningSession, cand: Candidate, why: str) -> None:
    trial = session.store.start_trial(session.study, cand)
    # wall_s stays 0: nothing ran (run_candidate always records the time a run took)
    session.store.finish_trial(trial.id, Measurement(status=Status.CONSTRAINTS, detail=why))  # type: ignore[arg-type]
    session.emit("coder", f"trial #{trial.number} rejected before running (not counted in the budget): {why}",
                 trial=trial.number)
