"""An in-memory Optuna study kept between asks: a fixed base of trials, and a scratch area on top.

TPE reads the whole study on every ask. Building a new study and copying every trial into it on each
ask costs as much again (Optuna validates and deep-copies each trial it adds), so ``ReplayStudy`` keeps
one study: ``extend`` adds trials to its base once, an ask adds its own on top (trials still running,
the proposals it asked and told), and ``rollback`` removes those again, leaving the storage as it was
after the last ``extend`` (trial numbers, trial ids and the best trial included), so the next ask sees
exactly the study a fresh build of the same trials would give.

``rollback`` trims Optuna's ``InMemoryStorage`` directly; ``supported`` says whether the installed
Optuna has the fields it trims (if not, callers build a new study on every ask).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial


def _new_study(direction: str) -> optuna.Study:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.RandomSampler(seed=0)  # replaced by the caller before every ask
        return optuna.create_study(storage=InMemoryStorage(), direction=direction, sampler=sampler)


class ReplayStudy:
    """One Optuna study whose base grows by ``extend`` and whose scratch trials ``rollback`` removes."""

    def __init__(self, direction: str) -> None:
        self.study = _new_study(direction)
        self.storage: Any = self.study._storage
        self.study_id: int = self.study._study_id
        self.synced = 0  # how many entries of the caller's ordered source the base holds
        self.source: object = None  # the caller's object the base mirrors (rebuild when it is another one)
        self._saved: tuple[Any, ...] = ()
        self._save()

    @staticmethod
    def supported() -> bool:
        """Whether this Optuna's in-memory storage has the fields ``rollback`` restores."""
        probe: Any = _new_study("minimize")._storage
        info = getattr(probe, "_studies", {}).get(0)
        fields = ("trials", "best_trial_id", "param_distribution")
        return (info is not None and all(hasattr(info, f) for f in fields)
                and all(hasattr(probe, f) for f in ("_max_trial_id", "_trial_id_to_study_id_and_number",
                                                    "_prev_waiting_trial_number")))

    def _info(self) -> Any:
        return self.storage._studies[self.study_id]

    def _save(self) -> None:
        info = self._info()
        self._saved = (len(info.trials), self.storage._max_trial_id, info.best_trial_id,
                       dict(info.param_distribution), self.storage._prev_waiting_trial_number.get(self.study_id))

    @property
    def base_size(self) -> int:
        """How many trials the base holds."""
        return int(self._saved[0])

    def extend(self, trials: Sequence[FrozenTrial]) -> None:
        """Add ``trials`` to the base (call only when no scratch trials are on top)."""
        if trials:
            self.study.add_trials(trials)
        self._save()

    def rollback(self) -> None:
        """Remove every trial added since the last ``extend`` and restore the storage's bookkeeping."""
        count, max_id, best, distributions, waiting = self._saved
        info, storage = self._info(), self.storage
        for trial in info.trials[count:]:
            storage._trial_id_to_study_id_and_number.pop(trial._trial_id, None)
        del info.trials[count:]
        storage._max_trial_id = max_id
        info.best_trial_id = best
        info.param_distribution = dict(distributions)
        if waiting is None:
            storage._prev_waiting_trial_number.pop(self.study_id, None)
        else:
            storage._prev_waiting_trial_number[self.study_id] = waiting
        self.study._thread_local.cached_all_trials = None
