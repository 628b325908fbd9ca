"""A guided start for small budgets: the default, then every knob the rules point at changed at once.

With a budget of a few trials (``small_budget``: at most two per free parameter) the offline planner's
one-knob screening cannot reach an optimum that needs two or more knobs changed together. The guided start
does what an I/O engineer reading a trace does instead:

1. the default (measured, traced where the job has the ``iotrace`` observer);
2. one config that changes **every** knob a rule points at, each in its rule's direction (``guided``):
   fewer syncs, larger transfers, chunks that match the transfer, file per process on a non-parallel
   file system, collective buffering and write data sieving off on one node, more writer threads ...
   Rules are data (``guided_rules.RULES``): words that find a parameter by its name or help text, the direction, how
   sure the rule is without a trace, and the trace category (``runners/iotrace/suggest.py``) that raises
   it. A rule below ``GUIDE`` confidence joins only when the baseline's trace flags its category;
3. then adjustments from the best config so far (``moves``): if the guided config lost to the default,
   it with one knob undone, least sure knob first (unless the judge called the loss noise: then it is a
   tie, and the moves start from the guided config); and coordinate moves from the incumbent, the
   highest-priority knobs first (a changed ordered knob steps back towards its default, a choice tries
   its other values), one alternative per knob per round.

Every step is a function of the history, so a resumed study continues the same way.
"""


from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tunesmith.runners.space import SearchSpace, Value
from tunesmith.runners.types import Trial, Verdict

from .base import objective_value
from .grid import Picker
from .guided_rules import (
    GUIDE,
    RULES,
    Context,
    Rule,
    applies,
    context,
    magnitude,
    preferred,
    rule_for,
    scale,
    small_budget,
)

Config = dict[str, Value]
__all__ = ["RULES", "Context", "Rule", "context", "offer_guided", "plan", "rule_for", "small_budget"]


@dataclass
class Knob:
    """A parameter the guided start reasons about: its rule (if any), priority and guided value."""

    name: str
    rule: Rule | None
    priority: float
    target: Value | None = None


def plan(space: SearchSpace, base: Config, ctx: Context, order: Sequence[str],
         boosts: dict[str, float] | None = None) -> tuple[Config, list[Knob]]:
    """The guided config and every free knob, highest priority first (a rule's confidence plus the
    trace's score for its category plus what earlier studies' lessons add (``boosts``, see
    ``lesson_priors``); knobs no rule names follow in ``order``)."""
    boosts = boosts or {}
    position = {n: i for i, n in enumerate(order)}
    knobs: list[Knob] = []
    config = dict(base)
    for param in sorted(space.params, key=lambda p: getattr(rule_for(p), "prefer", "") in ("match", "large")):
        if len(param.grid(5)) < 2:
            continue
        rule = rule_for(param)
        if rule is None:
            knobs.append(Knob(param.name, None, boosts.get(param.name, 0.0)))
            continue
        boost = boosts.get(param.name, 0.0)
        priority = rule.confidence + ctx.flagged.get(rule.category, 0.0) + boost
        sure = applies(rule, ctx) or (rule.confidence + boost >= GUIDE and rule.when == "")
        target = preferred(param, rule, ctx, config, space) if sure else None
        if target is not None and not param.contains(target):
            target = None
        if target is not None:
            config[param.name] = target
        knobs.append(Knob(param.name, rule, priority, target))
    knobs.sort(key=lambda k: (-k.priority, position.get(k.name, len(position))))
    return config, knobs


UNKNOWN = 0.3  # how likely a knob no rule names is to matter
OVERSHOOT = 0.5  # how likely the far end of an ordered range is past the best value
FAR_RATIO = 8.0  # a move by this factor or more (1 MiB -> 16 MiB writes) counts as far, even one grid step


def doubt(space: SearchSpace, knob: Knob, guided: Config, base: Config) -> float:
    """How much trying ``knob``'s alternatives next is worth: the guided config's least certain bets
    first. A knob moved to the far end of its range may have overshot; a knob moved by a rule is wrong
    with about (1 - confidence); a knob left alone is worth its rule's confidence when the rule points
    elsewhere (1 - confidence when it agrees with the default), ``UNKNOWN`` when no rule names it."""
    if knob.rule is None:
        return UNKNOWN
    c = knob.rule.confidence
    if guided[knob.name] != base[knob.name]:
        ordered = scale(space.get(knob.name))
        ends = (guided[knob.name], base[knob.name])
        far = ordered is not None and all(v in ordered for v in ends) and \
            abs(ordered.index(ends[0]) - ordered.index(ends[1])) > 1
        sizes = [magnitude(space.get(knob.name), v) or 0.0 for v in ends]
        if far or (min(sizes) > 0 and max(sizes) / min(sizes) >= FAR_RATIO):  # a big jump may overshoot
            return max(OVERSHOOT, 1 - c)
        return 1 - c
    return 1 - c if knob.target == base[knob.name] else c


def alternatives(space: SearchSpace, knob: Knob, incumbent: Config, base: Config) -> list[Value]:
    """``knob``'s next values from the incumbent's, best bets first: an ordered knob's neighbours (back
    towards its default first when the incumbent moved it, else the rule's way first), a choice's other
    values (the rule's value, then the default, then the rest)."""
    param = space.get(knob.name)
    current = incumbent[knob.name]
    ordered = scale(param)
    if ordered is not None and current in ordered:
        i = ordered.index(current)
        up, down = ordered[i + 1 : i + 2], ordered[max(0, i - 1) : i]
        default_up = (magnitude(param, base[knob.name]) or 0.0) > (magnitude(param, current) or 0.0)
        if current != base[knob.name]:
            return up + down if default_up else down + up
        smaller = knob.rule is not None and knob.rule.prefer == "smallest"
        return down + up if smaller else up + down
    first = [knob.target, base[knob.name]]
    rest = [v for v in [*first, *param.grid(5)] if v is not None and v != current]
    return list(dict.fromkeys(rest))


def moves(space: SearchSpace, knobs: Sequence[Knob], base: Config, guided: Config,
          measured: Sequence[tuple[Config, float]], minimize: bool, *, tie: bool = False) -> list[tuple[Config, str]]:
    """Configs to try after the guided one, in order, with why: undo one guided change at a time when
    the guided config lost to the default (least sure first), then coordinate moves from the best
    measured config so far, one alternative per knob per round, highest priority first.

    ``tie``: the judge's verdict on the guided config was noise (its interval straddles zero), so a
    slower median is no evidence against it: no undoing, and the moves start from the guided config,
    which the rules favour, instead of from the default."""
    def better(a: float, b: float | None) -> bool:
        return b is None or (a < b if minimize else a > b)

    incumbent, best = base, None
    latest = {repr(sorted(c.items())): (c, v) for c, v in measured}  # a config's latest value counts
    for config, value in latest.values():
        if better(value, best):
            incumbent, best = config, value
    score = {k: v for k, (_, v) in latest.items()}
    g, b = score.get(repr(sorted(guided.items()))), score.get(repr(sorted(base.items())))
    out: list[tuple[Config, str]] = []
    changed = [k for k in knobs if guided[k.name] != base[k.name]]
    if tie and g is not None and b is not None and best == b and not better(g, b):
        incumbent, best = guided, g  # a tie within noise: the rules' prior decides where to search from
    elif g is not None and b is not None and not better(g, b) and len(changed) > 1 and best == b:
        for k in sorted(changed, key=lambda k: k.priority):
            why = k.rule.key if k.rule else "no rule"
            out.append(({**guided, k.name: base[k.name]}, f"the guided config lost to the default: undo {k.name} ({why})"))
    ranked = sorted(knobs, key=lambda k: -doubt(space, k, guided, base))  # stable: priority breaks ties
    rounds = [alternatives(space, k, incumbent, base) for k in ranked]
    for depth in range(max((len(r) for r in rounds), default=0)):
        for k, alts in zip(ranked, rounds, strict=True):
            if depth < len(alts):
                why = k.rule.key if k.rule else "no rule names it"
                out.append(({**incumbent, k.name: alts[depth]},
                            f"from the best so far, {k.name}: {incumbent[k.name]} -> {alts[depth]} ({why})"))
    return out


def describe(guided: Config, base: Config, knobs: Sequence[Knob], traced: bool) -> str:
    """One line: what the guided config changes and by which rule."""
    parts = [f"{k.name} {base[k.name]} -> {guided[k.name]} ({k.rule.key})" for k in knobs
             if k.rule is not None and guided[k.name] != base[k.name]]
    source = "the baseline's I/O trace and the rules" if traced else "the parameters' names and help (no trace) and the rules"
    return f"guided start from {source}: " + ("; ".join(parts) or "no rule applies")


def offer_guided(picker: Picker, history: Sequence[Trial], base: Config, order: Sequence[str], prefix: str,
                 boosts: dict[str, float] | None = None) -> None:
    """Offer the guided start's next configs (after the baseline, which the caller offers first): the
    guided config, then the undo and coordinate moves, each new and feasible, until ``picker`` is full."""
    strategy = picker.strategy
    space = strategy.space
    metrics = None
    measured: list[tuple[Config, float]] = []
    verdicts: dict[str, Verdict | None] = {}
    for trial in history:
        if trial.candidate.source is not None:
            continue
        verdicts[repr(sorted(trial.candidate.config.items()))] = trial.verdict
        if trial.candidate.config == base and trial.measurement is not None and metrics is None:
            metrics = {k: v for k, v in trial.measurement.metrics.items() if k.startswith("iotrace.")} or None
        value = objective_value(trial)
        if value is not None:
            measured.append((dict(trial.candidate.config), value))
    ctx = context(space, metrics)
    guided, knobs = plan(space, base, ctx, order, boosts)
    picker.offer(guided, "planner", f"{prefix}: {describe(guided, base, knobs, metrics is not None)}")
    tie = verdicts.get(repr(sorted(guided.items()))) == Verdict.NOISE  # judged noise against the default
    for config, why in moves(space, knobs, base, guided, measured, strategy.objective.minimize, tie=tie):
        if picker.full:
            return
        picker.offer(config, "planner", f"{prefix}: adjust: {why}")
