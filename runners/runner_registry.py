"""The runner registry: a runner name in a job file (``[runner] kind``) -> its class, imported on first use.

Only runners a job can configure are listed. ``ReplayRunner`` and ``RecordingRunner``
(``runners/replay/runner.py``) are built in code around recordings (tests, benchmarks), not from a job.
"""

from __future__ import annotations

from .base import Runner
from .registry import Registry

RUNNERS: Registry[Runner] = Registry(
    "runner",
    {
        "local": "tunesmith.runners.local:LocalRunner",
        "torchrun": "tunesmith.runners.training.torchrun:TorchrunRunner",
    },
)
