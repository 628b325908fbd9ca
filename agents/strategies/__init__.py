"""tunesmith.agents.strategies: what to try next.

``STRATEGIES`` maps a strategy name to its class, imported on first use. Adding a strategy is one module
and one line here (and one parameter in ``tests/test_strategies.py``).
"""

from tunesmith.runners.registry import Registry

from .base import Strategy

STRATEGIES: Registry[Strategy] = Registry(
    "strategy",
    {
        "grid": "tunesmith.agents.strategies.grid:GridStrategy",
        "random": "tunesmith.agents.strategies.random_search:RandomStrategy",
        "tpe": "tunesmith.agents.strategies.tpe:TPEStrategy",
        "offline_planner": "tunesmith.agents.strategies.offline_planner:OfflinePlannerStrategy",
    },
)

__all__ = ["STRATEGIES", "Strategy"]
