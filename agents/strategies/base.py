"""What to try next: the Strategy interface shared by samplers and planners."""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from tunesmith.runners.job import Objective
from tunesmith.runners.space import SearchSpace, Value
from tunesmith.runners.types import Candidate, Trial, TrialState, candidate_key


def objective_value(trial: Trial) -> float | None:
    """The trial's objective (median of its samples) if it finished OK with timing, else None."""
    m = trial.measurement
    if trial.state != TrialState.DONE or m is None or not m.ok or not m.samples:
        return None
    return m.median


S = TypeVar("S")


@functools.lru_cache(maxsize=1 << 16)
def _cached_key(items: tuple[tuple[str, str, Value], ...], source: str | None) -> str:
    return candidate_key({name: value for name, _, value in items}, source)


def config_key(config: dict[str, Value], source: str | None = None) -> str:
    """``candidate_key`` memoised (it hashes JSON, and strategies key many configs on every ask)."""
    return _cached_key(tuple((k, type(v).__name__, v) for k, v in sorted(config.items())), source)


def _add_key(keys: set[str], trial: Trial) -> None:
    keys.add(config_key(trial.candidate.config, trial.candidate.source))


def settled(trial: Trial) -> bool:
    """A trial whose result can no longer change: it finished or failed."""
    return trial.state in (TrialState.DONE, TrialState.FAILED)


def _mark(trial: Trial) -> tuple[Any, ...]:
    return trial.id, trial.number, trial.candidate.config, trial.candidate.source, trial.state, trial.measurement


class Prefix(Generic[S]):
    """Data derived from the settled prefix of a history, extended with only the trials added since.

    A strategy stays a function of its history (the same history gives the same proposals, so a resumed
    study continues exactly), but rebuilding what it derives from thousands of trials on every ``ask``
    would make each ask cost more than the last. A study's history grows at the end (a trial that
    finishes late is inserted before newer ones, which moves the trial at the cache's end), so the cache
    covers ``history[:n]`` and is trusted while ``history[0]`` and ``history[n-1]`` are still the trials
    it saw there (id, number, config, source, state, measurement); otherwise it is rebuilt from scratch.
    Only settled (finished or failed) trials enter it: the caller handles the tail from ``n`` itself.
    """

    def __init__(self, new: Callable[[], S], add: Callable[[S, Trial], None]) -> None:
        self._new, self._add = new, add
        self.state: S = new()
        self.length = 0
        self._ends: tuple[Any, ...] = ()

    def __call__(self, history: Sequence[Trial]) -> tuple[S, int]:
        """The derived data and how many leading trials of ``history`` it covers."""
        n = self.length
        if n and (n > len(history) or (_mark(history[0]), _mark(history[n - 1])) != self._ends):
            self.state, n = self._new(), 0
        start = n
        for trial in history[n:]:
            if not settled(trial):
                break
            self._add(self.state, trial)
            n += 1
        if n != start or n != self.length:
            self._ends = (_mark(history[0]), _mark(history[n - 1])) if n else ()
        self.length = n
        return self.state, n


class Strategy(abc.ABC):
    """Proposes candidates from the space and the study's history.

    Strategies are stateless between calls: everything they know comes from ``history`` (every trial of
    the study so far, finished or failed), so a resumed study continues exactly; there is no ``tell``.
    ``feasible`` tells whether a config passes the space's constraints and the target's checks and
    prediction (a study passes ``tunesmith.runners.admissibility.feasibility``, the check the coder
    applies; the default checks the space's constraints only); samplers propose only feasible,
    not-yet-tried configs (the baseline excepted, see ``Picker``). ``ask`` returns fewer than ``n``
    (possibly none) when the strategy has nothing new to offer.
    """

    name: ClassVar[str] = ""
    uses_llm: ClassVar[bool] = False

    def __init__(
        self,
        space: SearchSpace,
        objective: Objective,
        *,
        seed: int = 0,
        feasible: Callable[[dict[str, Value]], bool] | None = None,
        baseline: dict[str, Value] | None = None,
        rules: Sequence[str] = (),
    ) -> None:
        self.space = space
        self.objective = objective
        self.seed = seed
        self.feasible = feasible or (lambda config: not space.violations(config))
        self.baseline = baseline or space.defaults()
        self.rules = list(rules) or space.names  # parameter names, most promising first
        self._keys: Prefix[set[str]] = Prefix(set, _add_key)

    def history_keys(self, history: Sequence[Trial]) -> tuple[set[str], int]:
        """The keys of ``history[:n]`` (kept between asks, extended with new trials) and ``n``: the keys of
        the trials from ``n`` on (not yet finished) are the caller's to add. Do not modify the set.
        """
        keys = self.__dict__.get("_keys")
        if keys is None:  # a strategy whose __init__ did not call ours
            keys = self._keys = Prefix(set, _add_key)
        return keys(history)

    def tried_set(self, history: Sequence[Trial]) -> set[str]:
        """Every key in ``history``, as a new set (without re-keying the history seen before)."""
        keys, n = self.history_keys(history)
        return keys.union(config_key(t.candidate.config, t.candidate.source) for t in history[n:])

    @abc.abstractmethod
    def ask(self, history: Sequence[Trial], n: int = 1) -> list[Candidate]:
        """Up to ``n`` new candidates."""

    # helpers shared by implementations -------------------------------------------------------------
    def best(self, history: Sequence[Trial]) -> Trial | None:
        scored = [(objective_value(t), t) for t in history]
        scored = [(v, t) for v, t in scored if v is not None]
        if not scored:
            return None
        pick = min if self.objective.minimize else max
        return pick(scored, key=lambda vt: vt[0])[1]
