"""The one file that wires the agent graph.

    plan ──> evaluate ──> evaluate ...    evaluate = code -> run -> judge (-> run -> judge: re-measure an
      │         │                         apparent win before declaring it) -> reflect -> plan the next
      │         │                         round, in one step (one checkpoint per round)
      └──> confirm <─┘  (budget spent, space exhausted, patience, the planner stops)
              └──> finish ──> END   (confirm: the best and the default re-measured, interleaved)

``plan`` is the first step (and the one a study that stops before running anything ends in); after
that each round is one ``evaluate`` step (``nodes/evaluate.py`` says why a kill inside it loses nothing
and why a resume never plans a round twice).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from tunesmith.agents.nodes.confirm import confirm
from tunesmith.agents.nodes.evaluate import evaluate
from tunesmith.agents.nodes.planner import plan
from tunesmith.agents.nodes.reflector import finish
from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState


def _after_plan(state: StudyState) -> str:
    return "confirm" if state.get("stop_reason") and not state.get("proposals") else "evaluate"


def _after_evaluate(state: StudyState) -> str:
    return "confirm" if state.get("stop_reason") and not state.get("proposals") else "evaluate"


def build_graph(session: TuningSession, checkpointer: Any = None) -> Any:
    """Compile the planner, then the evaluate loop (coder, run, judge, reflector, planner), then confirm and
    finish, around one session."""
    graph = StateGraph(StudyState)
    graph.add_node("plan", partial(plan, session=session))
    graph.add_node("evaluate", partial(evaluate, session=session))
    graph.add_node("confirm", partial(confirm, session=session))
    graph.add_node("finish", partial(finish, session=session))

    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", _after_plan, {"evaluate": "evaluate", "confirm": "confirm"})
    graph.add_conditional_edges("evaluate", _after_evaluate, {"evaluate": "evaluate", "confirm": "confirm"})
    graph.add_edge("confirm", "finish")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)
