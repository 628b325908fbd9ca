"""The torchrun runner: a single-node ``torch.distributed.run`` launch, supervised by the local runner.

The spec's command must be ``[python, script, *args]`` or ``[python, -m, module, *args]``; it becomes
``[python, -m, torch.distributed.run, --standalone, --nnodes=1, --nproc-per-node=N, script, *args]``.
The launcher and its workers form one process group, so the wall-time limit, the memory limit (summed
over the launcher and every worker) and a scheduler's stop apply to the whole tree. A worker that crashes
makes the launcher exit non-zero; that comes back as an ordinary failed RunResult with the output tails.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

from ..base import Runner, RunResult, RunSpec
from ..job import Job
from ..local import LocalRunner

_PYTHON_NAME = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?(\.exe)?$")


def is_python(executable: str) -> bool:
    """Whether ``executable`` names a Python interpreter (``python``, ``python3.11``, this interpreter)."""
    if _PYTHON_NAME.match(os.path.basename(executable)):
        return True
    try:
        return os.path.realpath(executable) == os.path.realpath(sys.executable)
    except OSError:
        return False


def torchrun_argv(argv: list[str], nproc: int) -> list[str]:
    """Rewrite ``[python, script|-m module, *args]`` into a single-node torchrun command.

    Raises ValueError (one line: problem; fix) when the command is not of that form.
    """
    if len(argv) < 2 or not is_python(argv[0]):
        raise ValueError(
            "the torchrun runner needs a command of the form [python, script, ...]; "
            "fix: start the command with the Python interpreter, e.g. [sys.executable, 'train.py']"
        )
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}; fix: set runner.nproc to 1 or more")
    python, rest = argv[0], argv[1:]
    if rest[0] == "-m":
        if len(rest) < 2:
            raise ValueError("'-m' needs a module name; fix: write [python, '-m', 'package.module', ...]")
    elif rest[0].startswith("-"):
        raise ValueError(
            f"interpreter option {rest[0]!r} cannot be passed to torchrun workers; "
            "fix: give the script (or -m module) right after the interpreter"
        )
    launcher = [python, "-m", "torch.distributed.run", "--standalone", "--nnodes=1"]
    return [*launcher, f"--nproc-per-node={nproc}", *rest]


@lru_cache(maxsize=1)
def _distributed_status() -> tuple[bool, str]:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False, "torch is not installed; fix: pip install torch"
    if "torch" not in sys.modules:
        # Importing torch costs seconds; until something else has loaded it, the launcher's presence
        # answers. A build without distributed support then fails its runs with the launcher's message.
        for location in spec.submodule_search_locations:
            if os.path.isfile(os.path.join(location, "distributed", "run.py")):
                return True, ""
        return (
            False,
            "this torch has no torch.distributed.run; fix: install a torch build with distributed support",
        )
    try:
        dist = importlib.import_module("torch.distributed")
    except Exception as exc:  # noqa: BLE001 - any import failure means the runner is unavailable
        return False, f"torch.distributed cannot be imported ({type(exc).__name__}: {exc})"
    if not dist.is_available():
        return False, "this torch build has no distributed support; fix: install a torch build with it"
    return True, ""


class TorchrunRunner(Runner):
    """Launches ``spec.nproc`` workers on this node with torchrun and supervises them like LocalRunner.

    Sets ``OMP_NUM_THREADS=1`` for the workers unless the spec's environment sets it (torchrun's own
    default, made explicit so it does not print a warning into every tail).
    """

    name = "torchrun"

    def __init__(self, local: LocalRunner | None = None) -> None:
        self.local = local or LocalRunner()

    def available(self) -> tuple[bool, str]:
        return _distributed_status()

    def close(self) -> None:
        self.local.close()

    def attach(self, job: Job, scratch: Path) -> None:
        self.local.attach(job, scratch)

    def prepare(self, spec: RunSpec) -> RunSpec:
        """The spec the local runner executes: torchrun's command line and the worker environment."""
        env = dict(spec.env)
        env.setdefault("OMP_NUM_THREADS", "1")
        return spec.model_copy(update={"argv": torchrun_argv(spec.argv, spec.nproc), "env": env})

    def run(self, spec: RunSpec) -> RunResult:
        try:
            launch = self.prepare(spec)
        except ValueError as exc:
            return RunResult(returncode=None, launch_error=str(exc))
        return self.local.run(launch)
