"""Registries of the extension points the agents look up by name: targets and runners."""

from __future__ import annotations

from tunesmith.runners.base import Runner, Target
from tunesmith.runners.registry import Registry

TARGETS: Registry[Target] = Registry(
    "target",
    {
        "command": "tunesmith.runners.io.command:CommandTarget",
        "checkpoint_io": "tunesmith.runners.io.checkpoint_io:CheckpointIOTarget",
        "training": "tunesmith.runners.training.target:TrainingTarget",
        "replay": "tunesmith.runners.replay.target:ReplayTarget",
        "triton_config": "tunesmith.kernels.target:TritonConfigTarget",
        "kernel": "tunesmith.kernels.codegen_target:KernelGenTarget",
    },
)


def runner_registry() -> Registry[Runner]:
    """The runner registry (imported lazily: it lives with the runners)."""
    from tunesmith.runners.runner_registry import RUNNERS

    return RUNNERS
