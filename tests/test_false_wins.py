"""A simulation of the judge's verdict path: how often a study ends with a win that is not there.

Every challenger is drawn from the default's own distribution (10 % multiplicative noise, 4 repeats);
each goes through the functions the judge and the final re-measure call (``selection.first_look``,
``selection.confirmation``, ``selection.final_plan`` and ``selection.final_speedup``), so the simulation
cannot drift from the code it checks. Seeded, so every run gives the same counts.
"""

from __future__ import annotations

import random

from tunesmith.runners import selection
from tunesmith.runners.selection import Rules
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState, Verdict

NOISE, REPEATS = 0.10, 4
RULES = Rules(minimize=True, min_effect=0.02, repeats=REPEATS)


class Study:
    """A study in memory: numbered trials, drawn samples, verdicts set the way the judge sets them."""

    def __init__(self, seed: int, rules: Rules = RULES) -> None:
        self.rng = random.Random(seed)
        self.rules = rules
        self.trials: list[Trial] = []
        self.truth: dict[str, float] = {}  # candidate key -> true median

    def run(self, config: dict, origin: str, true_median: float, repeats: int = REPEATS, rationale: str = "") -> Trial:
        cand = Candidate(config=config, origin=origin, rationale=rationale)  # type: ignore[arg-type]
        self.truth.setdefault(cand.key, true_median)
        samples = [true_median * (1 + self.rng.gauss(0, NOISE)) for _ in range(repeats)]
        trial = Trial(id=len(self.trials) + 1, study="sim", number=len(self.trials) + 1, candidate=cand,
                      state=TrialState.DONE, measurement=Measurement(status=Status.OK, samples=samples))
        self.trials.append(trial)
        return trial

    def judge(self, trial: Trial, incumbent: Trial) -> Trial:
        """The judge's path for one challenger; returns the incumbent afterwards."""
        look = selection.first_look(trial, incumbent, self.rules)
        if look.decision != "better":
            trial.verdict = Verdict(look.decision)
            return incumbent
        again_inc = self.run(incumbent.candidate.config, "remeasure", self.truth[incumbent.candidate.key])
        again = self.run(trial.candidate.config, "remeasure", self.truth[trial.candidate.key])
        confirmed = selection.confirmation(trial, incumbent, again, again_inc, self.rules).confirmed
        trial.verdict = Verdict.BETTER if confirmed else Verdict.NOISE
        return trial if confirmed else incumbent

    def finish(self) -> bool:
        """The final re-measure; True when the study ends claiming a confirmed win over the default."""
        base, best = selection.baseline_trial(self.trials), selection.best_trial(self.trials)
        if best is None or base is None or best.id == base.id:
            return False
        for cand, k in selection.final_plan(self.trials, best, base, self.rules.final_samples):
            self.run(cand.config, "final", self.truth[cand.key], repeats=k, rationale=cand.rationale)
        final = selection.final_speedup(self.trials, self.rules)
        assert final is not None and final.basis.startswith("final re-measure")
        return final.confirmed


def simulate(seed: int, challengers: int, gain: float = 0.0) -> tuple[bool, bool]:
    """(a win was confirmed during the study, the study ends with a confirmed win) for one study.

    The first challenger's true median is ``1 - gain`` (0 = a null study); the rest equal the default.
    """
    study = Study(seed)
    default = study.run({"x": 0}, "baseline", 1.0)
    default.verdict = Verdict.BASELINE
    incumbent = default
    for j in range(1, challengers + 1):
        incumbent = study.judge(study.run({"x": j}, "planner", 1.0 - gain if j == 1 else 1.0), incumbent)
    return incumbent.id != default.id, study.finish()


def test_null_studies_rarely_end_with_a_confirmed_win() -> None:
    runs = [simulate(seed, challengers=100) for seed in range(100)]
    during = sum(d for d, _ in runs)
    ended = sum(e for _, e in runs)
    assert ended <= 1, f"{ended} of 100 null studies ended with a confirmed win"
    assert during >= ended  # the final re-measure only ever removes wins
    assert during > 0  # the sample is large enough to see the per-win confirmation let one through


def test_a_real_30_percent_win_is_confirmed_almost_always() -> None:
    ended = sum(simulate(seed, challengers=3, gain=0.30)[1] for seed in range(1000, 1200))
    assert ended >= 0.9 * 200, f"only {ended} of 200 real wins confirmed"


def test_the_final_re_measure_runs_interleaved_with_fresh_samples() -> None:
    study = Study(7)
    default = study.run({"x": 0}, "baseline", 1.0)
    default.verdict = Verdict.BASELINE
    best = study.run({"x": 1}, "planner", 0.7)
    best.verdict = Verdict.BETTER
    assert study.finish()
    finals = [t for t in study.trials if t.candidate.origin == "final"]
    assert [t.candidate.key for t in finals] == [default.candidate.key, best.candidate.key] * 4  # A B A B ...
    assert [len(t.measurement.samples) for t in finals] == [2] * 8  # 8 fresh samples per side in 4 rounds
    assert selection.final_plan(study.trials, best, default, 8) == []  # complete: nothing is run again
    assert selection.final_schedule(10) == [3, 3, 2, 2] and selection.final_schedule(3) == [1, 1, 1]
