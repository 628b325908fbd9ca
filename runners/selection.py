"""One definition of the default's measurement, the incumbent, the best trial and the speedup.

Pure functions of a study's trials (and, for the numbers a verdict used, its recorded events) and of
the objective: no I/O, no store. The judge decides with the ``Speedup`` these functions build and every
front end prints that same object, so the interval a user reads is the interval the verdict used.

Verdict policy (simulated in tests/test_false_wins.py):

- first look: a challenger's first run against the incumbent's first run; an apparent win is only a
  reason to re-measure;
- confirmation: fresh re-measure samples only, both sides measured again back to back (the samples that
  made the challenger look good are left out: they carry the winner's curse);
- final re-measure: when the study stops, the default and the best confirmed config run again,
  interleaved A B A B, with fresh samples; that comparison is the study's reported answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .speedup import FINAL_MIN_SAMPLES, Rules, Speedup, speedup_of
from .types import Candidate, Status, Trial, Verdict

__all__ = ["FINAL_MIN_SAMPLES", "REPEAT_ORIGINS", "Rules", "Speedup", "StudyResult", "baseline_trial", "best_measured",
           "best_trial", "confirmation", "fastest_looking", "final_plan", "final_rationale", "final_runs",
           "final_schedule", "final_speedup", "first_look", "incumbent_trial", "is_first_run", "is_interrupted",
           "is_timed", "speedup_of", "study_result", "unavailable", "verdict_records"]

REPEAT_ORIGINS = frozenset({"remeasure", "final"})  # runs of a config measured before: never budget or history
FINAL_MAX_ROUNDS = 4  # A B rounds of the final re-measure; each run takes several samples beyond that


def is_interrupted(trial: Trial) -> bool:
    """A run cut short (killed process, Ctrl-C): retried, never judged, never a reference.

    The store's ``Trial.interrupted``; older rows only say it in the measurement's detail.
    """
    m = trial.measurement
    return bool(getattr(trial, "interrupted", False)) or (
        m is not None and m.status == Status.INFRASTRUCTURE and m.detail.startswith("interrupted"))


def is_first_run(trial: Trial) -> bool:
    """A first-time, finished-or-running evaluation of its config (not a re-measure, not interrupted)."""
    return trial.candidate.origin not in REPEAT_ORIGINS and not is_interrupted(trial)


def is_timed(trial: Trial) -> bool:
    m = trial.measurement
    return m is not None and m.ok and bool(m.samples)


def baseline_trial(trials: Sequence[Trial]) -> Trial | None:
    """The default configuration's first finished, non-interrupted measurement."""
    return next((t for t in trials if t.candidate.origin == "baseline" and t.measurement is not None
                 and not is_interrupted(t)), None)


def incumbent_trial(trials: Sequence[Trial]) -> Trial | None:
    """The judge's incumbent: the last first run it called better, else its reference (the baseline)."""
    ranked = [t for t in trials if is_first_run(t) and t.verdict in (Verdict.BETTER, Verdict.BASELINE)]
    return ranked[-1] if ranked else None


def best_trial(trials: Sequence[Trial]) -> Trial | None:
    """The best confirmed config: the incumbent once the study stops (the final re-measure may still
    fail to confirm it; ``StudyResult.speedup`` says so)."""
    return incumbent_trial(trials)


def best_measured(trials: Sequence[Trial], minimize: bool) -> Trial | None:
    """The fastest-looking first run (best median among valid timed ones), confirmed or not."""
    timed = [t for t in trials if is_first_run(t) and is_timed(t)]
    if not timed:
        return None
    pick = min if minimize else max
    return pick(timed, key=lambda t: t.measurement.median)  # type: ignore[union-attr]


def unavailable(reason: str, *, basis: str, trial: Trial, reference: Trial, min_effect: float) -> Speedup:
    return Speedup(basis=basis, unavailable_reason=reason, trial=trial.number, reference=reference.number,
                   against_default=reference.candidate.origin == "baseline", min_effect=min_effect)


def _samples(t: Trial) -> list[float]:
    return list(t.measurement.samples) if t.measurement is not None else []


def first_look(trial: Trial, incumbent: Trial, rules: Rules) -> Speedup:
    """A challenger's first run against the incumbent's first run (seeded by the challenger's number)."""
    return speedup_of(_samples(trial), _samples(incumbent), minimize=rules.minimize, min_effect=rules.min_effect,
                      basis=f"first run vs trial #{incumbent.number}'s first run", seed=trial.number,
                      trial=trial.number, reference_trial=incumbent.number,
                      against_default=incumbent.candidate.origin == "baseline")


def confirmation(challenger: Trial, incumbent: Trial, again: Trial, incumbent_again: Trial, rules: Rules) -> Speedup:
    """An apparent win judged on the fresh re-measure samples of both sides only."""
    basis = f"fresh re-measure, back to back (trials #{again.number} vs #{incumbent_again.number})"
    for t in (again, incumbent_again):
        if not is_timed(t):
            m = t.measurement
            why = f"{m.status.value}: {m.detail}" if m else "no measurement"
            return unavailable(f"re-measure trial #{t.number} failed ({why})", basis=basis, trial=challenger,
                               reference=incumbent, min_effect=rules.min_effect)
    return speedup_of(_samples(again), _samples(incumbent_again), minimize=rules.minimize,
                      min_effect=rules.min_effect, basis=basis, seed=again.number, trial=challenger.number,
                      reference_trial=incumbent.number, against_default=incumbent.candidate.origin == "baseline")


def final_schedule(n: int) -> list[int]:
    """Samples per run of each side, round by round (A B A B ...): ``n`` in all, at most 4 rounds."""
    rounds = min(n, FINAL_MAX_ROUNDS)
    return [n // rounds + (1 if i < n % rounds else 0) for i in range(rounds)]


def final_rationale(best: Trial, default: Trial) -> str:
    """What marks (and pairs) the runs of one final re-measure."""
    return f"final re-measure of trial #{best.number} against the default (trial #{default.number}), interleaved"


def final_runs(trials: Iterable[Trial], best: Trial, default: Trial) -> list[Trial]:
    """The finished runs of the final re-measure of ``best`` against ``default``, in order."""
    mark = final_rationale(best, default)
    return [t for t in trials if t.candidate.origin == "final" and t.candidate.rationale == mark
            and not is_interrupted(t) and t.measurement is not None]


def final_plan(trials: Sequence[Trial], best: Trial, default: Trial, n: int) -> list[tuple[Candidate, int]]:
    """The runs (candidate, samples) of the final re-measure still to do: none once it is complete."""
    mark = final_rationale(best, default)
    steps = []
    for k in final_schedule(n):
        for side in (default, best):
            steps.append((Candidate(config=side.candidate.config, source=side.candidate.source, origin="final",
                                    rationale=mark), k))
    return steps[len(final_runs(trials, best, default)):]


def final_speedup(trials: Sequence[Trial], rules: Rules) -> Speedup | None:
    """The final re-measure of the best confirmed config against the default, once it is complete."""
    default, best = baseline_trial(trials), best_trial(trials)
    if default is None or best is None or best.id == default.id:
        return None
    runs = final_runs(trials, best, default)
    if not runs or final_plan(trials, best, default, rules.final_samples):
        return None
    basis = f"final re-measure, interleaved (trials #{runs[0].number}-#{runs[-1].number})"
    failed = next((t for t in runs if not is_timed(t)), None)
    if failed is not None:
        m = failed.measurement
        return unavailable(f"trial #{failed.number} failed at the final re-measure ({m.status.value}: {m.detail})",  # type: ignore[union-attr]
                           basis=basis, trial=best, reference=default, min_effect=rules.min_effect)
    ours = [x for t in runs if t.candidate.key == best.candidate.key for x in _samples(t)]
    theirs = [x for t in runs if t.candidate.key == default.candidate.key for x in _samples(t)]
    return speedup_of(ours, theirs, minimize=rules.minimize, min_effect=rules.min_effect, basis=basis,
                      seed=best.number, trial=best.number, reference_trial=default.number, against_default=True)


def verdict_records(events: Iterable[Mapping[str, Any]]) -> dict[int, Speedup]:
    """Trial number -> the comparison its (latest) verdict used, from the judge's recorded events."""
    out: dict[int, Speedup] = {}
    for e in events:
        data = e.get("data") or {}
        if e.get("node") == "judge" and isinstance(data.get("trial"), int) and isinstance(data.get("comparison"), dict):
            out[data["trial"]] = Speedup.from_dict(data["comparison"])
    return out


@dataclass(frozen=True)
class StudyResult:
    """What a study found, as every front end reports it.

    ``speedup`` is the best confirmed config against the default (None when the default is the best, or
    either is missing): the final re-measure when it is complete (``final``), else the best's own
    verdict when that was against the default, else an interim comparison whose ``basis`` says so.
    ``fastest`` is the fastest-looking first run that is neither, with the comparison its verdict used.
    """

    baseline: Trial | None
    best: Trial | None
    speedup: Speedup | None
    final: bool
    fastest: Trial | None
    fastest_speedup: Speedup | None


def _pooled(trials: Sequence[Trial], trial: Trial) -> list[float]:
    """A config's first run and its re-measures during the study (not the final ones)."""
    key = trial.candidate.key
    return [x for t in trials if t.candidate.key == key and t.candidate.origin != "final" and not is_interrupted(t)
            and is_timed(t) and (t.id == trial.id or t.candidate.origin == "remeasure") for x in _samples(t)]


def study_result(trials: Sequence[Trial], rules: Rules, records: Mapping[int, Speedup] | None = None) -> StudyResult:
    """Baseline, best, reported speedup and fastest-looking trial of a study, from one definition."""
    records = records or {}
    base, best = baseline_trial(trials), best_trial(trials)
    speedup, final = None, False
    if base is not None and best is not None and best.id != base.id:
        speedup = final_speedup(trials, rules)
        final = speedup is not None
        if speedup is None:
            speedup = records.get(best.number)
            if speedup is None or not speedup.against_default:
                speedup = _interim(trials, best, base, rules)
    fastest, fastest_sp = fastest_looking(trials, base, best, rules, records)
    return StudyResult(base, best, speedup, final, fastest, fastest_sp)


def fastest_looking(trials: Sequence[Trial], base: Trial | None, best: Trial | None, rules: Rules,
                    records: Mapping[int, Speedup] | None = None) -> tuple[Trial | None, Speedup | None]:
    """The fastest-looking first run when it is neither the best nor the default, with the comparison
    its verdict used (recorded), else its first run against the default's first run."""
    top = best_measured(trials, rules.minimize)
    if top is None or base is None or best is None or top.id in (best.id, base.id):
        return None, None
    recorded = (records or {}).get(top.number)
    return top, recorded or speedup_of(
        _samples(top), _samples(base), minimize=rules.minimize, min_effect=rules.min_effect,
        basis=f"first run vs the default's first run (trial #{base.number})", seed=top.number,
        trial=top.number, reference_trial=base.number, against_default=True)


def _interim(trials: Sequence[Trial], best: Trial, base: Trial, rules: Rules) -> Speedup:
    ours, theirs = _pooled(trials, best), _pooled(trials, base)
    if len(ours) > len(_samples(best)) or len(theirs) > len(_samples(base)):
        basis = "interim: pooled first run + re-measures vs the default's (the final re-measure decides)"
    else:
        basis = "first run vs the default's first run" + ("" if rules.remeasure else " (re-measuring is off)")
    if base.measurement is not None and not base.measurement.ok:
        return unavailable(f"the default's run failed ({base.measurement.status.value})", basis=basis, trial=best,
                           reference=base, min_effect=rules.min_effect)
    return speedup_of(ours, theirs, minimize=rules.minimize, min_effect=rules.min_effect, basis=basis,
                      seed=best.number, trial=best.number, reference_trial=base.number, against_default=True)
