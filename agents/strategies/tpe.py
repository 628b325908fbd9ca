"""Bayesian search with Optuna's TPE sampler, driven statelessly through ask/tell.

Each ``ask`` builds a fresh in-memory Optuna study, replays the whole history into it (finished trials
as COMPLETE with their median, failed ones as FAIL, still-running ones as RUNNING so the constant-liar
TPE spreads a batch out), and asks it. The replayed trials of finished configs are built once and kept
between asks (``base.Prefix``); Optuna's own TPE still reads every trial on each ask. Proposals that are infeasible are told FAIL, proposals already
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
from optuna.trial import FrozenTrial, create_trial
from optuna.trial import TrialState as OptunaState

from tunesmith.runners.space import Param, Value
from tunesmith.runners.types import Candidate, Trial, TrialState

from .base import Prefix, Strategy, objective_value
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


class _Group:
    """The trials of one candidate key and, once built, the Optuna trial that sums them up."""

    def __init__(self, trials: list[Trial]) -> None:
        self.trials = trials
        self._frozen: object = None  # None: not built yet; False: nothing to replay

    def add(self, trial: Trial) -> None:
        self.trials.append(trial)
        self._frozen = None

    def summary(self) -> tuple[OptunaState, float | None]:
        return _replay_state(self.trials)

    def frozen(self, distributions: dict[str, BaseDistribution]) -> FrozenTrial | None:
        """The trial to replay (None for a config from another space or outside the distributions)."""
        if self._frozen is None:
            self._frozen = _frozen_trial(self.trials, distributions) or False
        return self._frozen or None  # type: ignore[return-value]


def _frozen_trial(trials: list[Trial], distributions: dict[str, BaseDistribution]) -> FrozenTrial | None:
    config = trials[-1].candidate.config
    if any(name not in config for name in distributions):
        return None  # a trial from another space: nothing to learn about this one
    state, value = _replay_state(trials)
    try:
        return create_trial(state=state, value=value, params={name: config[name] for name in distributions},
                            distributions=distributions)
    except ValueError:
        return None  # a value outside the distributions (space narrowed since): skip it


def _add_to_group(groups: dict[str, _Group], trial: Trial) -> None:
    key = config_key(trial.candidate.config, trial.candidate.source)
    if key not in groups:
        groups[key] = _Group([])
    groups[key].add(trial)


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
        self._groups: Prefix[dict[str, _Group]] = Prefix(dict, _add_to_group)  # finished trials by key

    def _study(self, history: Sequence[Trial]) -> tuple[optuna.Study, dict[str, float | None]]:
        """A study holding the history, and each tried key's known value (None when it has none)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = optuna.samplers.TPESampler(
                seed=derived_seed(self.seed, len(history)), n_startup_trials=self.n_startup_trials
            )
            study = optuna.create_study(direction=self.objective.direction, sampler=sampler)
        groups, covered = self._groups(history)  # the finished trials' groups, kept between asks
        tail: dict[str, _Group] = {}  # the rest (still running), on copies of the groups they join
        for trial in history[covered:]:
            key = config_key(trial.candidate.config, trial.candidate.source)
            if key not in tail:
                tail[key] = _Group(list(groups[key].trials) if key in groups else [])
            tail[key].add(trial)
        known: dict[str, float | None] = {}
        frozen = []
        for key in [*groups, *(k for k in tail if k not in groups)]:  # first-seen order, as a replay gives
            group = tail.get(key) or groups[key]
            state, value = group.summary()
            known[key] = value
            made = group.frozen(self.distributions)
            if made is not None:
                frozen.append(made)
        study.add_trials(frozen)
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
