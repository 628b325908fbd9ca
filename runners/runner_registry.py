"""The runner registry: a runner name in a job file -> its class, imported on first use."""

from __future__ import annotations

from .base import Runner
from .registry import Registry

RUNNERS: Registry[Runner] = Registry(
    "runner",
    {
        "local": "tunesmith.runners.local:LocalRunner",
        "torchrun": "tunesmith.runners.training.torchrun:TorchrunRunner",
        "replay": "tunesmith.runners.replay.runner:ReplayRunner",
    },
)
