"""tunesmith.tools: the operations agents and front ends call, and an LLM may call as tools.

- ``tools.operations``: read-only operations (list studies, show a study or a trial, compare two trials,
  search knowledge), each a pydantic input model, a pydantic output model and a function of the study
  store; ``TOOLS``, ``openai_tool_specs()`` and ``call_tool()`` expose them to an LLM.
- ``tools.trials``: running a candidate as a stored trial, and what strategies and resume see of a study.
- ``tools.plugins``: the registries of targets and runners the agents look up by name.
"""
