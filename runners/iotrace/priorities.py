"""The first attempt from the characterisation: which parameters to try first, and a first config.

``first_attempt(characterisation, space)`` walks the ranked suggestions and, for each, finds the space's
parameters that set what the suggestion is about (``suggest.CATEGORY_WORDS`` matched against each
parameter's name, its help text and the quoted text of its source; a match in the name counts most). The
parameters found for the top suggestion come first, then those of the next one, then the rest in the
order given. The first config is the default with the top parameter moved the way the suggestion points
(syncing less often, larger transfers; otherwise the far end of its range).

``priorities_from_history(history, space)`` does the same from a study's history: it reads the
``iotrace.suggest.<category>`` scores the iotrace (or darshan) observer stored on the baseline's
measurement, so a strategy can reorder its screening once the default has run under the tracer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from .model import METRIC_PREFIX
from .suggest import CATEGORY_WORDS

if TYPE_CHECKING:
    from ..space import Param, SearchSpace, Value
    from ..types import Trial
    from .model import IOCharacterisation

FEWER_SYNCS = ("end", "close", "batch", "group", "once", "periodic", "never", "none", "off")
SUGGEST_KEY = f"{METRIC_PREFIX}.suggest."


class FirstAttempt(BaseModel):
    """Parameters in the order to try them, a suggested first config, and why (one line per parameter)."""

    priorities: list[str]
    config: dict[str, bool | int | float | str] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)


def match_score(param: Param, category: str) -> int:
    """How strongly ``param`` is about ``category``: 3 per word in its name, 1 per word in its help/source."""
    words = CATEGORY_WORDS.get(category, ())
    name = param.name.lower()
    text = f"{param.help} {param.source.quote} {param.source.ref}".lower()
    score = 0
    for i, word in enumerate(words):
        weight = 2 if i < 2 else 1  # the first words of a category are its strongest
        score += 3 * weight * (word in name) + weight * (word in text)
    return score


def ranked_params(categories: Sequence[str], space: SearchSpace, order: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(parameter, category) for every parameter some category names, categories in the order given;
    within a category the best match first (ties keep ``order``)."""
    position = {n: i for i, n in enumerate(order or space.names)}
    out: list[tuple[str, str]] = []
    taken: set[str] = set()
    for category in categories:
        scored = [(match_score(p, category), p.name) for p in space.params if p.name not in taken]
        hits = sorted((s, n) for s, n in scored if s > 0)
        hits.sort(key=lambda sn: (-sn[0], position.get(sn[1], len(position))))
        for _, name in hits:
            out.append((name, category))
            taken.add(name)
    return out


def suggested_value(param: Param, category: str) -> Value:
    """The value a suggestion points ``param`` to: fewer syncs, larger transfers, else the far end."""
    grid = param.grid(5)
    others = [v for v in grid if v != param.default] or grid
    if param.kind == "bool":
        return not param.default
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in others)
    if numeric:
        if category in ("fsync_policy", "transfer_size", "collective_buffering", "striping", "hdf5_layout"):
            return max(others)  # sync every N: larger N; sizes and counts: larger
        low, high = min(grid), max(grid)
        return high if param.default != high else low
    if category == "fsync_policy":
        for word in FEWER_SYNCS:
            for v in others:
                if str(v).lower().startswith(word):
                    return v
    return others[0]


def first_attempt(char: IOCharacterisation, space: SearchSpace, order: Sequence[str] = ()) -> FirstAttempt:
    """Parameters ordered by the characterisation's suggestions, and the first config to try."""
    return _first(char.suggestions and [s.category for s in char.suggestions] or [],
                  {s.category: s.reason for s in char.suggestions}, space, order)


def _first(categories: list[str], reasons: dict[str, str], space: SearchSpace, order: Sequence[str]) -> FirstAttempt:
    ranked = ranked_params(categories, space, order)
    names = [n for n, _ in ranked]
    rest = [n for n in (order or space.names) if n in space.names and n not in names]
    rest += [n for n in space.names if n not in names and n not in rest]
    config: dict[str, Value] = dict(space.defaults())
    why = []
    if ranked:
        top, category = ranked[0]
        value = suggested_value(space.get(top), category)
        config[top] = value
        why.append(f"{top} -> {value}: {category} ({reasons.get(category, 'from the trace')})")
        why += [f"{n}: {c}" for n, c in ranked[1:]]
    return FirstAttempt(priorities=names + rest, config=config, reasons=why)


def scores_from_metrics(metrics: dict[str, float]) -> list[str]:
    """The suggestion categories an observer stored on a measurement, highest score first."""
    found = [(v, k[len(SUGGEST_KEY):]) for k, v in metrics.items() if k.startswith(SUGGEST_KEY)]
    return [c for _, c in sorted(found, key=lambda vc: (-vc[0], vc[1]))]


def priorities_from_history(history: Sequence[Trial], space: SearchSpace,
                            baseline: dict[str, Value] | None = None, order: Sequence[str] = ()) -> list[str] | None:
    """Parameter names in the order the baseline's trace suggests, or None when no traced baseline ran."""
    base = dict(space.defaults(), **(baseline or {}))
    for trial in history:
        m = trial.measurement
        if m is None or trial.candidate.source is not None or trial.candidate.config != base:
            continue
        categories = scores_from_metrics(m.metrics)
        if categories:
            return _first(categories, {}, space, order).priorities
    return None
