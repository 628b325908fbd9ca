"""Bayesian search with Optuna's TPE sampler, driven statelessly through ask/tell.

Each ``ask`` builds a fresh in-memory Optuna study, replays the whole history into it (finished trials
as COMPLETE with their median, failed ones as FAIL, still-running ones as RUNNING so the constant-liar
TPE spreads a batch out), and asks it. Proposals that are infeasible are told FAIL, proposals already
tried are told their known result, and the sampler is asked again, a bounded number of times; whatever
is still missing is filled with random untried configs.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState as OptunaState
from optuna.trial import create_trial

from tunesmith.runners.space import Param, Value
from tunesmith.runners.types import Candidate, Trial, TrialState

from .base import Strategy, objective_value
from .grid import Picker, config_key, derived_seed
from .random_search import fill_random

optuna.logging.set_verbosity(optuna.logging.WARNING)


def distribution(param: Param) -> BaseDistribution:
    """The Optuna distribution of a parameter (power-of-two ranges become categoricals of their grid)."""
    if param.kind == "int":
        return IntDistribution(int(param.low), int(param.high), step=param.step or 1)  # type: ignore[arg-type]
    if param.kind in ("float", "log_float"):
        return FloatDistribution(float(param.low), float(param.high), log=param.kind == "log_float")  # type: ignore[arg-type]
    return CategoricalDistribution(param.grid())


def _replay_state(trials: list[Trial]) -> tuple[OptunaState, float | None]:
    """The Optuna state (and value) summing up every trial of one candidate key."""
    values = [v for v in (objective_value(t) for t in trials) if v is not None]
    if values:
        return OptunaState.COMPLETE, values[-1]
    if any(t.state in (TrialState.QUEUED, TrialState.RUNNING) for t in trials):
        return OptunaState.RUNNING, None
    return OptunaState.FAIL, None


class TPEStrategy(Strategy):
    """Tree-structured Parzen Estimator (Optuna) over the space; baseline first.

    ``n_startup_trials`` random proposals precede the model (Optuna's default is 10); the sampler is
    seeded from (seed, number of trials so far), so the same history always yields the same proposals.
    """

    name = "tpe"

    def __init__(  # type: ignore[no-untyped-def]
        self, *args, n_startup_trials: int = 10, max_attempts: int = 16, points: int = 5, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.n_startup_trials = n_startup_trials
        self.max_attempts = max_attempts
        self.points = points
        self.distributions = {p.name: distribution(p) for p in self.space.params}

    def _study(self, history: Sequence[Trial]) -> tuple[optuna.Study, dict[str, float | None]]:
        """A study holding the history, and each tried key's known value (None when it has none)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = optuna.samplers.TPESampler(
                seed=derived_seed(self.seed, len(history)), n_startup_trials=self.n_startup_trials
            )
            study = optuna.create_study(direction=self.objective.direction, sampler=sampler)
        by_key: dict[str, list[Trial]] = {}
        for trial in history:
            by_key.setdefault(config_key(trial.candidate.config, trial.candidate.source), []).append(trial)
        known: dict[str, float | None] = {}
        for key, trials in by_key.items():
            state, value = _replay_state(trials)
            known[key] = value
            config = trials[-1].candidate.config
            if any(name not in config for name in self.distributions):
                continue  # a trial from another space: nothing to learn about this one
            params = {name: config[name] for name in self.distributions}
            try:
                frozen = create_trial(
                    state=state, value=value, params=params, distributions=self.distributions
                )
                study.add_trial(frozen)
            except ValueError:
                continue  # a value outside the distributions (space narrowed since): skip it
        return study, known

    def _config(self, params: dict[str, object]) -> dict[str, Value]:
        return {name: params[name] for name in self.space.names}  # type: ignore[misc]

    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        picker = Picker(self, history, n)
        picker.offer_baseline()
        if picker.full:
            return picker.picked
        study, known = self._study(history)
        finished = sum(v is not None for v in known.values())
        for _ in range(self.max_attempts * n):
            if picker.full:
                break
            trial = study.ask(self.distributions)
            config = self._config(trial.params)
            key = config_key(config)
            if key in known:
                value = known[key]
                if value is None:
                    study.tell(trial, state=OptunaState.FAIL)
                else:
                    study.tell(trial, value)
                continue
            rationale = f"TPE proposal after {finished} finished trials"
            if not picker.offer(config, "sampler", rationale):
                study.tell(trial, state=OptunaState.FAIL)  # infeasible, or a duplicate within this batch
        if not picker.full:
            rng = random.Random(derived_seed(self.seed, len(history)))
            fill_random(picker, rng, points=self.points, rationale="random fill (TPE found nothing new)")
        return picker.picked
