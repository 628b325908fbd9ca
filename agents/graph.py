"""The one file that wires the agent graph.

    plan ──> code ──> run ──> judge ──> reflect ──> plan ...
      │                ^        │           │
      │                └────────┘           │  (re-measure an apparent win before declaring it)
      └──> confirm <────────────────────────┘  (budget spent, space exhausted, patience, the planner stops)
              └──> finish ──> END          (confirm: the best and the default re-measured, interleaved)
"""

from __future__ import annotations

from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from tunesmith.agents.nodes.coder import code
from tunesmith.agents.nodes.confirm import confirm
from tunesmith.agents.nodes.execute import run
from tunesmith.agents.nodes.judge import judge
from tunesmith.agents.nodes.planner import plan
from tunesmith.agents.nodes.reflector import finish, reflect
from tunesmith.agents.session import TuningSession
from tunesmith.agents.state import StudyState


def _after_plan(state: StudyState) -> str:
    return "confirm" if state.get("stop_reason") and not state.get("proposals") else "code"


def _after_judge(state: StudyState) -> str:
    return "run" if state.get("queue") else "reflect"


def _after_reflect(state: StudyState) -> str:
    return "confirm" if state.get("stop_reason") else "plan"


def build_graph(session: TuningSession, checkpointer: Any = None) -> Any:
    """Compile the planner → coder → run → judge → reflector loop, then confirm and finish, around one session."""
    graph = StateGraph(StudyState)
    graph.add_node("plan", partial(plan, session=session))
    graph.add_node("code", partial(code, session=session))
    graph.add_node("run", partial(run, session=session))
    graph.add_node("judge", partial(judge, session=session))
    graph.add_node("reflect", partial(reflect, session=session))
    graph.add_node("confirm", partial(confirm, session=session))
    graph.add_node("finish", partial(finish, session=session))

    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", _after_plan, {"code": "code", "confirm": "confirm"})
    graph.add_edge("code", "run")
    graph.add_edge("run", "judge")
    graph.add_conditional_edges("judge", _after_judge, {"run": "run", "reflect": "reflect"})
    graph.add_conditional_edges("reflect", _after_reflect, {"plan": "plan", "confirm": "confirm"})
    graph.add_edge("confirm", "finish")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)
