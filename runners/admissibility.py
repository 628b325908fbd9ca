"""One admissibility check for a config or candidate, before anything runs.

A candidate is admissible when its config fits the space (known parameters, values in range), breaks
none of the space's constraints, passes the target's own ``check`` and is not predicted infeasible by
the target's ``predict``. The coder uses this to reject proposals before they run; the strategies use
it (through ``feasibility``) so that samplers never propose what the coder would reject.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import JobError
from .space import SearchSpace, Value
from .types import Candidate

if TYPE_CHECKING:
    from .base import Target


@dataclass(frozen=True)
class Admissibility:
    """The outcome of ``admissible``: the reasons a candidate cannot run (none when it can), and the
    candidate with its config completed and coerced by the space (None when the config does not fit it).
    """

    reasons: tuple[str, ...] = ()
    candidate: Candidate | None = None

    @property
    def ok(self) -> bool:
        return not self.reasons

    def __bool__(self) -> bool:
        return self.ok

    @property
    def why(self) -> str:
        """The reasons as one line (empty when admissible)."""
        return "; ".join(self.reasons)


def admissible(
    candidate_or_config: Candidate | dict[str, Any], space: SearchSpace, target: Target | None = None
) -> Admissibility:
    """Check a candidate (or a bare config) against the space and the target, in that order.

    Reasons are, in order: the first type/range problem (then nothing else is checked), broken
    constraints, the target's ``check`` reasons, and ``predicted infeasible: ...`` when the target's
    prediction says it will not fit. ``target=None`` checks the space only.
    """
    if isinstance(candidate_or_config, Candidate):
        cand = candidate_or_config
    else:
        cand = Candidate(config=dict(candidate_or_config))
    try:
        config = space.validate_config(cand.config, where="candidate")
    except JobError as exc:
        return Admissibility(reasons=(exc.line(),))
    if config != cand.config:
        # recompute the key: it hashes the config, and the completed config is what runs
        cand = Candidate.model_validate({**cand.model_dump(exclude={"key"}), "config": config})
    reasons = list(space.violations(config))
    if target is not None:
        reasons += list(target.check(cand))
        prediction = target.predict(cand)
        if prediction is not None and not prediction.feasible:
            reasons.append("predicted infeasible" + (f": {prediction.reason}" if prediction.reason else ""))
    return Admissibility(reasons=tuple(reasons), candidate=cand)


def feasibility(space: SearchSpace, target: Target | None = None) -> Callable[[dict[str, Value]], bool]:
    """A strategy's ``feasible`` callback: True when ``admissible(config, space, target)`` is."""

    def feasible(config: dict[str, Value]) -> bool:
        return admissible(config, space, target).ok

    return feasible
