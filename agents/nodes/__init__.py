"""The agent graph nodes: planner, coder, run, judge, reflector."""
