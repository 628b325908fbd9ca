"""A study's trials in memory, kept up to date with reads of only what changed.

A kernel study runs thousands of short trials: reading every trial back from the store on each round
would make tunesmith's own time per trial grow with the study. ``StudyHistory`` loads the study once
and then reads only the trials stored since its newest one, plus the few it holds that can still
change, and keeps the views the agents ask for (what strategies see, candidates to retry) up to date as
trials arrive.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from tunesmith.knowledge.storage import StudyStorage
from tunesmith.runners.selection import REPEAT_ORIGINS
from tunesmith.runners.types import Candidate, Trial, TrialState

_SETTLED = (TrialState.DONE, TrialState.FAILED)


def _number(trial: Trial) -> int:
    return trial.number


def in_strategy_history(trial: Trial) -> bool:
    """Whether strategies see the trial: a finished first-time evaluation (see ``strategy_history``)."""
    return trial.state in _SETTLED and trial.candidate.origin not in REPEAT_ORIGINS and not trial.interrupted


class StudyHistory:
    """Every trial of one study, in number order, loaded once and then extended with what changed.

    ``refresh()`` reads the trials stored after the newest one it holds (``trials_since``) and reads
    again the trials it holds that can still change: those it last saw running, and those named with
    ``changed(trial_id)`` (the judge names each trial whose verdict it sets). The study's writer lock
    means no other process changes the study meanwhile, so nothing else can be stale.

    The views ``for_strategy`` and ``pending_retries`` equal ``strategy_history`` and ``pending_retries``
    of ``tunesmith.tools.trials`` over the whole study, and are kept up to date as trials arrive.
    """

    def __init__(self, store: StudyStorage, study: str) -> None:
        self.store, self.study = store, study
        self._trials: list[Trial] = []  # number order (the store numbers a study's trials in id order)
        self._index: dict[int, int] = {}  # trial id -> position in _trials
        self._last_id = 0
        self._loaded = False
        self._unsettled: set[int] = set()  # ids last seen running or queued
        self._changed: set[int] = set()  # ids named by changed()
        self._strategy: list[Trial] = []  # strategy_history, number order
        self._finished_keys: set[str] = set()  # keys with a run that was not interrupted and is not running
        self._interrupted: dict[str, tuple[int, Candidate]] = {}  # key -> (number, candidate) of its first cut run
        self.rows_read = 0  # trials read from the store so far (tests check that a round reads O(1) rows)

    def changed(self, trial_id: int | None) -> None:
        """The trial was changed in the store (a verdict set): read it again on the next refresh."""
        if trial_id is not None:
            self._changed.add(trial_id)

    def refresh(self) -> list[Trial]:
        """Bring the history up to date and return it (every trial, number order; do not modify it)."""
        if not self._loaded:
            fresh = self.store.trials(self.study)
            self._loaded = True
        else:
            fresh = self.store.trials_since(self.study, self._last_id)
        self.rows_read += len(fresh)
        for trial in fresh:
            if trial.id in self._index:  # not expected (ids grow), but never hold a trial twice
                self._replace(trial)
                continue
            self._index[trial.id] = len(self._trials)  # type: ignore[index]
            self._trials.append(trial)
            self._last_id = max(self._last_id, trial.id or 0)
            self._track(None, trial)
        stale = sorted((self._unsettled | self._changed) - {t.id for t in fresh})
        self._changed.clear()
        for trial_id in stale:
            self._replace(self.store.trial(trial_id))
            self.rows_read += 1
        return self._trials

    @property
    def trials(self) -> list[Trial]:
        """Every trial as of the last ``refresh`` (no store access)."""
        return self._trials

    # -- views ---------------------------------------------------------------------------------------
    def for_strategy(self) -> list[Trial]:
        """What strategies see (``tools.trials.strategy_history``), as a new list."""
        return list(self._strategy)

    def pending_retries(self) -> list[Candidate]:
        """Candidates whose only runs were interrupted (``tools.trials.pending_retries``)."""
        waiting = sorted((n, c) for key, (n, c) in self._interrupted.items() if key not in self._finished_keys)
        return [c for _, c in waiting]

    # -- upkeep --------------------------------------------------------------------------------------
    def _replace(self, trial: Trial) -> None:
        pos = self._index.get(trial.id)  # type: ignore[arg-type]
        if pos is None:
            return
        old = self._trials[pos]
        self._trials[pos] = trial
        self._track(old, trial)

    def _track(self, old: Trial | None, new: Trial) -> None:
        """Update the views for ``new`` (which replaces ``old``, or is new)."""
        if new.state in _SETTLED:
            self._unsettled.discard(new.id)  # type: ignore[arg-type]
        else:
            self._unsettled.add(new.id)  # type: ignore[arg-type]
        was, now = old is not None and in_strategy_history(old), in_strategy_history(new)
        if was:
            at = bisect_left(self._strategy, new.number, key=_number)
            if now:
                self._strategy[at] = new
            else:
                del self._strategy[at]
        elif now:
            insort(self._strategy, new, key=_number)
        key = new.candidate.key
        if not new.interrupted and new.state != TrialState.RUNNING:
            self._finished_keys.add(key)
        if new.interrupted:
            first = self._interrupted.get(key)
            if first is None or new.number < first[0]:
                self._interrupted[key] = (new.number, new.candidate)
