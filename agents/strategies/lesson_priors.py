"""Lessons from earlier studies as priors for the offline planner: which knob to try first, and where to.

A lesson that is a rule (its evidence changed one parameter and measured the effect, see
``knowledge/reflections.py``) names a parameter of *another* workload, the value it moved to and the value
it came from, and carries the parameter's semantic role (``guided_rules``: ``fewer-syncs``,
``larger-transfers`` ...) and help text when the study that wrote it knew them. ``map_lessons`` finds the
parameters of a new space the lesson is about:

1. the same role (``sync_every`` on one workload and an ``fsync`` policy on another are both
   ``fewer-syncs``): full match;
2. the same name: full match, halved as the help texts disagree (``chunk_kib`` of a compressor's frames
   is not ``chunk_kib`` of a checkpoint writer's writes);
3. help texts that share enough words: a partial match, weighted by the overlap.

and the value the lesson points at in the new space: the same value where the parameter means the same;
else the direction the lesson moved (larger or smaller) on an ordered parameter; else none (a group-commit
count of 64 says nothing about which of an fsync policy's names is best: the knob is screened first, over
all its values). A same-name match whose help texts disagree gives no value at all. Each prior weighs ``confidence x match``, so a strong lesson outranks a weak
one, a tiny local model's lesson (which starts at low confidence) counts little, and a lesson that later
studies contradicted (its confidence lowered by ``record_study``) sinks. ``ordered_by_priors`` puts the
parameters with priors first in the screening order, strongest first; ``role_boosts`` raises the guided
start's confidence in the knobs the lessons name. With no lessons nothing changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.runners.space import Param, SearchSpace, Value

from .guided_rules import magnitude, rule_for, scale

HELP_MATCH = 0.35  # share of help-text words two parameters must have in common to be matched by help alone
MIN_WEIGHT = 0.05  # a prior weaker than this is ignored
_WORD = re.compile(r"[a-z][a-z0-9]+")
_STOP = frozenset("the a an of or and to in on for per by is each one with at from as be this that its".split())


@dataclass(frozen=True)
class Prior:
    """A lesson mapped onto one parameter of the new space: the value it points at and how much it weighs."""

    param: str
    value: Value | None
    weight: float
    lesson: str
    how: str  # "role", "name" or "help"
    source_param: str


def describe_params(space: SearchSpace) -> dict[str, dict[str, str]]:
    """Each parameter's semantic role (a ``guided_rules`` rule key, "" for none) and help text, as a lesson
    records them."""
    out = {}
    for p in space.params:
        rule = rule_for(p)
        out[p.name] = {"role": rule.key if rule else "", "help": p.help}
    return out


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def help_similarity(a: str, b: str) -> float:
    """Share of words two help texts have in common (Jaccard over their content words)."""
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def _field(hit: Any, key: str, default: Any = None) -> Any:
    """A lesson's field from a knowledge hit (its metadata), a dict, or a ``Lesson``."""
    if isinstance(hit, dict):
        return hit.get("metadata", hit).get(key, default)
    md = getattr(hit, "metadata", None)
    if isinstance(md, dict):  # a KnowledgeHit
        return md.get(key, default)
    return getattr(hit, key, default)  # a Lesson


def _target(param: Param, value: str, was: str, same_meaning: bool) -> Value | None:
    """The value of ``param`` the lesson points at: the same value where the parameter means the same (same
    name, help texts that agree), else the lesson's direction (larger or smaller) on an ordered parameter,
    else None: the lesson says the knob matters, not where to move it (screening tries all its values)."""
    if same_meaning:
        for v in param.grid(5):
            if str(v) == value:
                return v
    ordered = scale(param)
    old = Param(name="x", kind="choice", default=was or value, values=(was or value, value))
    new_m, was_m = magnitude(old, value), magnitude(old, was) if was else None
    if ordered and new_m is not None and was_m is not None and new_m != was_m:
        return ordered[-1] if new_m > was_m else ordered[0]
    if param.kind == "bool" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def map_lessons(hits: Iterable[Any], space: SearchSpace, base: dict[str, Value]) -> list[Prior]:
    """The priors the retrieved lessons give on ``space`` (knowledge hits or ``Lesson`` objects), strongest
    first; lessons that are not rules, or match no parameter, give none."""
    roles = describe_params(space)
    priors: dict[str, Prior] = {}
    effects: dict[str, float] = {}
    for hit in hits:
        params = _field(hit, "params") or {}
        if isinstance(params, str):
            import json

            params = json.loads(params)
        if not _field(hit, "rule", False) or len(params) != 1:
            continue
        ((name, value),) = params.items()
        role, help_text = _field(hit, "role", "") or "", _field(hit, "help", "") or ""
        confidence = float(_field(hit, "confidence", 0.5))
        for p in space.params:
            if len(p.grid(5)) < 2:
                continue
            if role and roles[p.name]["role"] == role:
                how, match = "role", 1.0
            elif p.name == name:  # the same name; help texts that disagree (another meaning) halve it
                how, match = "name", 0.5 + 0.5 * min(1.0, help_similarity(help_text, p.help) / HELP_MATCH) \
                    if help_text and p.help else 1.0
            else:
                sim = help_similarity(help_text, p.help)
                if sim < HELP_MATCH:
                    continue
                how, match = "help", sim
            weight = round(confidence * match, 4)
            if weight < MIN_WEIGHT:
                continue
            was = str(_field(hit, "was", "") or "")
            target = None if how == "name" and match < 1.0 else _target(p, str(value), was, how == "name")
            if target is not None and target == base.get(p.name):
                target = None  # the lesson's value is already the default: nothing to move to
            prior = Prior(p.name, target, weight, str(_field(hit, "id", "")), how, name)
            effect = float(_field(hit, "effect", 0.0) or 0.0)
            if p.name not in priors or (prior.weight, effect) > (priors[p.name].weight, effects[p.name]):
                priors[p.name], effects[p.name] = prior, effect  # the stronger, then the larger effect wins
    return sorted(priors.values(), key=lambda pr: -pr.weight)


def ordered_by_priors(order: Sequence[str], priors: Sequence[Prior]) -> list[str]:
    """``order`` with the parameters the priors name first, strongest first; the rest keep their order."""
    first = [pr.param for pr in sorted(priors, key=lambda pr: -pr.weight) if pr.param in order]
    return [*dict.fromkeys(first), *(n for n in order if n not in first)]


def hinted_values(priors: Sequence[Prior]) -> dict[str, Value]:
    """Per parameter, the value its strongest prior points at (screening tries it first)."""
    out: dict[str, Value] = {}
    for pr in sorted(priors, key=lambda pr: -pr.weight):
        if pr.value is not None:
            out.setdefault(pr.param, pr.value)
    return out


def role_boosts(priors: Sequence[Prior]) -> dict[str, float]:
    """Per parameter, how much the lessons raise the guided start's confidence in it (its prior's weight)."""
    return {pr.param: pr.weight for pr in priors}
