"""Evaluate node: one graph step per round: code, run, judge and reflect, then plan the next round.

The coder, run, judge, reflector and planner stay separate functions (each testable alone, each with
its own module); this node calls them in the order the loop needs them (code, run, judge, then run and
judge again while the judge queues the back-to-back re-measure of an apparent win, then reflect, then
the planner's proposals for the next round unless the study stops). Running them as one LangGraph step
means one checkpoint per round, not five: a study of thousands of millisecond trials spends its time in
the runs, not in the graph's bookkeeping. The checkpoint holds the next round's proposals, so a resumed
study never asks the planner (an LLM) again for a round it already planned.

A kill inside the step loses no measurement, because the store is the source of truth: on resume the
step starts again from the previous checkpoint (its proposals), the coder skips what already finished,
and the trials of those proposals that finished without a verdict (killed before the judge, or an
apparent win killed during its re-measure: the judge stores no verdict until the win is decided) are
handed to the judge again. The judge's first look is seeded, so it reaches the same decision; a
re-measure that finished before the kill is reused (``TuningSession.measured_remeasure``).
"""

from __future__ import annotations

from typing import Any

from tunesmith.agents.budget import rejected_before_running
from tunesmith.agents.nodes.coder import code
from tunesmith.agents.nodes.execute import run
from tunesmith.agents.nodes.judge import judge
from tunesmith.agents.nodes.planner import plan
from tunesmith.agents.nodes.reflector import reflect
from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState
from tunesmith.runners.types import Candidate

_OUT = ("proposals", "queue", "finished", "judged", "comparisons", "incumbent", "awaiting_confirmation",
        "stop_reason", "round")  # the state keys this step may change


def evaluate(state: StudyState, session: TuningSession) -> dict[str, Any]:
    """Code, run, judge (re-measuring an apparent win) and reflect on the round's proposals, then plan the
    next round unless the study stops, in one step."""
    work: dict[str, Any] = dict(state)
    unjudged = unjudged_proposals(work, session) if session.take_resume_check() else []
    work.update(code(work, session))  # type: ignore[arg-type]
    work.update(run(work, session))  # type: ignore[arg-type]
    work["finished"] = unjudged + [i for i in work["finished"] if i not in unjudged]
    work.update(judge(work, session))  # type: ignore[arg-type]
    while work.get("queue"):  # the re-measures of an apparent win, then its verdict
        work.update(run(work, session))  # type: ignore[arg-type]
        work.update(judge(work, session))  # type: ignore[arg-type]
    work.update(reflect(work, session))  # type: ignore[arg-type]
    if not work.get("stop_reason"):
        work.update(plan(work, session))  # type: ignore[arg-type]
    return {k: work[k] for k in _OUT if k in work}


def unjudged_proposals(state: StudyState, session: TuningSession) -> list[int]:
    """Ids of trials of this round's proposals that finished, ran, and have no verdict yet (a resumed step)."""
    found: list[int] = []
    for raw in state.get("proposals") or []:
        cand = Candidate.model_validate(raw)
        if cand.origin == "remeasure":
            continue
        done = session.store.finished(session.study, cand.key)
        if done is not None and done.verdict is None and not rejected_before_running(done):
            found.append(done.id)  # type: ignore[arg-type]
    return found
