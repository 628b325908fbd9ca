"""The guided start after a guided config that measured slower than the default: undone knob by knob
when the judge called it worse, but kept as the place to search from when the judge called it noise
(then a knob it moved by 8x or more, here 1 MiB -> 16 MiB writes, is the first doubted)."""

from __future__ import annotations

from typing import Any

from tunesmith.agents.strategies import STRATEGIES
from tunesmith.runners.job import Objective
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState, Verdict

SPACE = SearchSpace(params=(
    Param(name="fsync", kind="choice", values=("per_chunk", "per_file", "end_syncfs"), default="per_file",
          help="fsync policy: after every chunk, once per file, or one syncfs at the end"),
    Param(name="chunk_kib", kind="choice", values=(64, 1024, 16384), default=1024, help="bytes per write call, in KiB"),
    Param(name="threads", kind="choice", values=(1, 4), default=1, help="writer threads"),
    Param(name="direct", kind="bool", default=False, help="open with O_DIRECT"),
))


def next_configs(verdict: Verdict) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(default, guided, third config) when the guided config's median is 10 % slower, judged ``verdict``."""
    strat = STRATEGIES.create("offline_planner", SPACE, Objective(), seed=0, budget=5)
    history: list[Trial] = []
    for i, (value, v) in enumerate([(1.0, Verdict.BASELINE), (1.1, verdict)]):
        (c,) = strat.ask(history, 1)
        m = Measurement(status=Status.OK, samples=[value, value])
        history.append(Trial(study="t", number=i, candidate=Candidate(config=c.config, origin=c.origin),
                             state=TrialState.DONE, measurement=m, verdict=v))
    (third,) = strat.ask(history, 1)
    return history[0].candidate.config, history[1].candidate.config, third.config


def test_a_guided_config_judged_worse_is_undone_one_knob() -> None:
    base, guided, third = next_configs(Verdict.WORSE)
    changed = [k for k in guided if guided[k] != base[k]]
    assert len(changed) > 1
    assert sum(third[k] != guided[k] for k in guided) == 1  # the guided config with one knob put back
    assert any(third[k] == base[k] for k in changed)


def test_a_guided_config_judged_noise_is_searched_from_biggest_jump_first() -> None:
    base, guided, third = next_configs(Verdict.NOISE)
    assert guided["chunk_kib"] == 16384 and guided["direct"] is True
    # a tie: the moves start from the guided config, and its 16x jump in write size is doubted first
    assert third == {**guided, "chunk_kib": 1024}
    assert third != next_configs(Verdict.WORSE)[2]
