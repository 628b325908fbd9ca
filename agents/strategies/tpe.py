"""Bayesian search with Optuna's TPE sampler, driven statelessly through ask/tell.

Each ``ask`` asks an in-memory Optuna study that holds the history: one trial per tried config, in the
order the configs were first tried (finished as COMPLETE with their latest median, failed as FAIL,
still running as RUNNING, so the constant-liar TPE spreads a batch out). The study is kept between
asks: the finished configs' trials are added once, and what one ask adds on top (the running configs,
the re-asked proposals) is removed again before the next, so the study always equals the one a fresh
instance would build from the same history (``_Replay``). The sampler is new on every ask, seeded from
(seed, number of trials so far), so the same history always yields the same proposals. Proposals that
are infeasible are told FAIL, proposals already tried are told their known result, and the sampler is
asked again, a bounded number of times; whatever is still missing is filled with random untried configs.
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
from .optuna_replay import ReplayStudy
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


class _Groups:
    """The finished trials grouped by key (first-seen order), each key's known value, and whether a
    key already replayed got another trial since (its replayed trial is then out of date)."""

    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {}
        self.order: list[str] = []
        self.known: dict[str, float | None] = {}
        self.finished = 0  # keys with a known value
        self.changed = False

    def add(self, trial: Trial) -> None:
        key = config_key(trial.candidate.config, trial.candidate.source)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group([])
            self.order.append(key)
        else:
            self.changed = True
            self.finished -= self.known[key] is not None
        group.add(trial)
        self.known[key] = group.summary()[1]
        self.finished += self.known[key] is not None


class TPEStrategy(Strategy):
    """Tree-structured Parzen Estimator (Optuna) over the space; baseline first.

    ``n_startup_trials`` random proposals precede the model (Optuna's default is 10); the sampler is
    seeded from (seed, number of trials so far), so the same history always yields the same proposals.
    The Optuna study is kept between asks and extended with the newly finished configs only.
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
        self._groups: Prefix[_Groups] = Prefix(_Groups, _Groups.add)  # finished trials by key
        self._replay: ReplayStudy | None = None

    def _synced(self, state: _Groups) -> ReplayStudy:
        """The kept study, its base holding every finished config of ``state`` (rebuilt when the history
        was rebuilt or a replayed config got another trial)."""
        replay = self._replay
        if replay is None or replay.source is not state or state.changed:
            replay = self._replay = ReplayStudy(self.objective.direction)
            replay.source, state.changed = state, False
        new = state.order[replay.synced :]
        made = (state.groups[key].frozen(self.distributions) for key in new)
        replay.extend([f for f in made if f is not None])
        replay.synced = len(state.order)
        return replay

    def _study(self, history: Sequence[Trial]) -> tuple[ReplayStudy, dict[str, float | None], int]:
        """A study holding the history (roll it back after use), each tried key's known value (None when
        it has none), and how many keys have one."""
        state, covered = self._groups(history)  # the finished trials' groups, kept between asks
        tail: dict[str, _Group] = {}  # the rest (still running), on copies of the groups they join
        for trial in history[covered:]:
            key = config_key(trial.candidate.config, trial.candidate.source)
            if key not in tail:
                tail[key] = _Group(list(state.groups[key].trials) if key in state.groups else [])
            tail[key].add(trial)
        known, finished = state.known, state.finished
        if tail:
            known = dict(known)
            for key, group in tail.items():
                finished -= known.get(key) is not None
                known[key] = group.summary()[1]
                finished += known[key] is not None
        if any(key in state.groups for key in tail) or not _ROLLBACK:
            replay = ReplayStudy(self.objective.direction)  # a replayed config runs again: build afresh
            order = [*state.order, *(k for k in tail if k not in state.groups)]
            made = ((tail.get(key) or state.groups[key]).frozen(self.distributions) for key in order)
            replay.extend([f for f in made if f is not None])
            return replay, known, finished
        replay = self._synced(state)
        made = (group.frozen(self.distributions) for group in tail.values())
        replay.study.add_trials([f for f in made if f is not None])  # on top: rolled back after the ask
        return replay, known, finished

    def _config(self, params: dict[str, object]) -> dict[str, Value]:
        return {name: params[name] for name in self.space.names}  # type: ignore[misc]

    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        picker = Picker(self, history, n)
        picker.offer_baseline()
        if picker.full:
            return picker.picked
        replay, known, finished = self._study(history)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            replay.study.sampler = optuna.samplers.TPESampler(
                seed=derived_seed(self.seed, len(history)), n_startup_trials=self.n_startup_trials
            )
        try:
            self._propose(replay.study, picker, known, finished, n)
        finally:
            replay.rollback()
        if not picker.full:
            rng = random.Random(derived_seed(self.seed, len(history)))
            fill_random(picker, rng, points=self.points, rationale="random fill (TPE found nothing new)")
        return picker.picked

    def _propose(
        self, study: optuna.Study, picker: Picker, known: dict[str, float | None], finished: int, n: int
    ) -> None:
        """Ask the sampler until ``picker`` is full or ``max_attempts * n`` proposals were asked."""
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


_ROLLBACK = ReplayStudy.supported()  # else a new study on every ask (slower, same proposals)
