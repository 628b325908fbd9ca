"""TPE and the offline planner extend what they derive by the new trials only (no timing: work counted),
and a long-lived instance answers exactly what a fresh one asked with the same history answers.

The speed itself is measured by the benchmarks (ms per ask early and late in a study).
"""

from __future__ import annotations

import random

from tunesmith.agents.strategies.offline_planner import OfflinePlannerStrategy
from tunesmith.agents.strategies.tpe import TPEStrategy
from tunesmith.runners.job import Objective
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState

SPACE = SearchSpace(params=tuple(Param(name=f"p{i}", kind="int", low=0, high=9, default=9) for i in range(1, 6)))


def cost(config: dict) -> float:
    return (sum((v - 3) ** 2 for v in config.values()) + 1) / 100


def finished(number: int, candidate: Candidate) -> Trial:
    """A finished trial (configs with p1 == 7 fail, so failed trials are replayed too)."""
    if candidate.config["p1"] == 7:
        return Trial(study="s", number=number, candidate=candidate, state=TrialState.FAILED,
                     measurement=Measurement(status=Status.RUNTIME, detail="crash"))
    return Trial(study="s", number=number, candidate=candidate, state=TrialState.DONE,
                 measurement=Measurement(status=Status.OK, samples=[cost(candidate.config)]))


def synthetic_history(n: int, seed: int = 4) -> list[Trial]:
    rng = random.Random(seed)
    configs = {tuple(rng.randrange(10) for _ in range(5)) for _ in range(3 * n)} - {(9,) * 5}
    picked = rng.sample(sorted(configs), n - 1)
    picked.insert(0, (9,) * 5)  # the baseline first, so TPE is asked
    return [finished(i, Candidate(config={f"p{k + 1}": v for k, v in enumerate(c)})) for i, c in enumerate(picked)]


def keys(strategy, history: list[Trial], n: int = 2) -> list[str]:  # noqa: ANN001
    return [c.key for c in strategy.ask(history, n)]


def test_tpe_adds_one_new_trial_per_ask_and_answers_like_a_fresh_instance() -> None:
    tpe = TPEStrategy(SPACE, Objective(), seed=3)
    history = synthetic_history(300)
    tpe.ask(history, 1)
    replay = tpe._replay
    assert replay is not None and replay.base_size == 300 and len(replay.study.trials) == 300
    grouped: list[int] = []
    original = tpe._groups._add
    tpe._groups._add = lambda state, t: (grouped.append(t.number), original(state, t))[1]
    for i in range(300, 305):
        history.append(finished(i, tpe.ask(history, 1)[0]))
    assert grouped == [300, 301, 302, 303]  # one new trial grouped per ask, not the whole history again
    assert tpe._replay is replay and replay.base_size == 304  # the same study, one trial added per ask
    assert len(replay.study.trials) == 304  # what an ask put on top of it was rolled back
    assert keys(tpe, history) == keys(TPEStrategy(SPACE, Objective(), seed=3), history)
    running = [*history, Trial(study="s", number=305, candidate=Candidate(config=dict.fromkeys(SPACE.names, 1)))]
    assert keys(tpe, running) == keys(TPEStrategy(SPACE, Objective(), seed=3), running)
    assert replay.base_size == len(replay.study.trials) == 305  # the running trial was on top for that ask only
    retried = history[next(i for i, t in enumerate(history) if t.state == TrialState.FAILED)]
    again = [*history, Trial(study="s", number=306, candidate=retried.candidate)]  # a failed config retried
    assert keys(tpe, again) == keys(TPEStrategy(SPACE, Objective(), seed=3), again)
    assert keys(tpe, history[:200]) == keys(TPEStrategy(SPACE, Objective(), seed=3), history[:200])
    assert tpe._replay is not replay  # the history was cut: the study was rebuilt


def test_tpe_asked_twice_with_the_same_history_answers_the_same() -> None:
    tpe = TPEStrategy(SPACE, Objective(), seed=8)
    history = synthetic_history(40)
    first = keys(tpe, history, 3)
    assert keys(tpe, history, 3) == first and len(first) == 3
    assert keys(TPEStrategy(SPACE, Objective(), seed=9), history, 3) != first  # the seed matters


def drive(planner: OfflinePlannerStrategy, history: list[Trial], asks: int) -> None:
    for _ in range(asks):
        for candidate in planner.ask(history, 1):
            history.append(finished(len(history), candidate))


def test_the_offline_planner_keys_one_new_trial_per_ask_and_answers_like_a_fresh_instance() -> None:
    planner = OfflinePlannerStrategy(SPACE, Objective(), seed=2)
    history: list[Trial] = []
    drive(planner, history, 40)  # the baseline, screening, local search, then TPE
    assert planner._tpe_strategy is not None
    assert any("TPE proposes" in t.candidate.rationale for t in history)
    for trial in synthetic_history(300, seed=6):  # grow it to 300 trials
        if trial.candidate.key not in {t.candidate.key for t in history}:
            history.append(finished(len(history), trial.candidate))
    history = history[:300]
    assert len(history) == 300
    planner.ask(history, 1)
    tpe, replay = planner._tpe_strategy, planner._tpe_strategy._replay
    seen: list[int] = []
    original = planner._seen._add
    planner._seen._add = lambda state, t: (seen.append(t.number), original(state, t))[1]
    drive(planner, history, 5)
    assert seen == [300, 301, 302, 303]  # one new trial keyed and valued per ask
    assert planner._tpe_strategy is tpe and tpe._replay is replay  # one TPE, one study, kept
    assert replay is not None and replay.base_size == 304
    fresh = OfflinePlannerStrategy(SPACE, Objective(), seed=2)
    assert keys(planner, history) == keys(fresh, history)
    assert keys(planner, history[:150]) == keys(OfflinePlannerStrategy(SPACE, Objective(), seed=2), history[:150])
    assert keys(planner, history[:20], 3) == keys(OfflinePlannerStrategy(SPACE, Objective(), seed=2), history[:20], 3)
