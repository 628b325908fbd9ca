"""Load a KernelBench-format problem file and trace its ``Model`` into a graph with concrete values.

The problem is imported from its path under a unique module name; the model is built from
``get_init_inputs()`` with a fixed seed and traced with ``torch.fx.symbolic_trace``, falling back to
``torch.export`` where fx cannot trace it. Every node's value on the example inputs is recorded
(``node.meta["value"]``): tensors give shapes and dtypes, and Python values computed from shapes
(``x.shape[-1]``, ``x.size(0)``) become constants.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.fx

from tunesmith.kernels.small_inputs import ensure_small_inputs
from tunesmith.runners.errors import JobError

from .ir import Unsupported

FORMAT_FIX = "give a KernelBench-format file: class Model(nn.Module), get_inputs() and get_init_inputs()"

_counter = itertools.count()


class ProblemError(JobError):
    """The problem file is missing, does not import, or lacks Model/get_inputs/get_init_inputs (exit 2)."""

    def __init__(self, problem: str, fix: str = FORMAT_FIX) -> None:
        super().__init__(problem, fix)


@dataclass
class TracedProblem:
    """A problem's module, its model, its example inputs and the traced graph (fx or export)."""

    path: Path
    module: ModuleType
    model: torch.nn.Module
    inputs: list[Any]
    init_inputs: list[Any]
    graph_module: torch.fx.GraphModule
    tracer: str  # "fx" or "export"
    returns_tuple: bool | None = None  # known for export (whose graph always returns a tuple); fx: from the graph


def load_module(path: Path) -> ModuleType:
    """Import the problem file at ``path`` as a fresh module (not cached in ``sys.modules``)."""
    path = Path(path)
    if not path.is_file():
        raise ProblemError(f"problem file {path} does not exist")
    name = f"_tunesmith_problem_{next(_counter)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProblemError(f"{path} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # inspect.getsource and dataclasses look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure is the problem's, reported in one line
        raise ProblemError(f"{path.name} failed to import: {type(exc).__name__}: {exc}") from None
    for attr in ("Model", "get_inputs", "get_init_inputs"):
        if not hasattr(module, attr):
            raise ProblemError(f"{path.name} has no {attr} (KernelBench format needs Model, get_inputs, get_init_inputs)")
    return module


def problem_inputs(module: ModuleType, *, small: bool) -> list[Any]:
    """The example inputs: ``get_small_inputs()`` when ``small`` and the problem has it, else ``get_inputs()``."""
    fn = getattr(module, "get_small_inputs", None) if small else None
    return list((fn or module.get_inputs)())


class _Recorder(torch.fx.Interpreter):
    """Runs the graph once and keeps every node's value in ``node.meta["value"]``."""

    def run_node(self, n: torch.fx.Node) -> Any:
        out = super().run_node(n)
        n.meta["value"] = out
        return out


def trace(path: Path, *, small: bool = False, seed: int = 0) -> TracedProblem:
    """Import, build (seeded) and trace the problem; record concrete values on its example inputs."""
    module = load_module(path)
    if small:  # no get_small_inputs(): derive one by shrinking the shape constants (kernels/small_inputs.py)
        ensure_small_inputs(module, Path(path).name)
    torch.manual_seed(seed)
    init_inputs = list(module.get_init_inputs())
    try:
        model = module.Model(*init_inputs)
    except Exception as exc:  # noqa: BLE001
        raise ProblemError(f"Model(*get_init_inputs()) failed: {type(exc).__name__}: {exc}") from None
    model.eval()
    torch.manual_seed(seed)
    which = "get_small_inputs()" if small and hasattr(module, "get_small_inputs") else "get_inputs()"
    try:
        inputs = problem_inputs(module, small=small)
    except Exception as exc:  # noqa: BLE001 - e.g. full KernelBench shapes that do not fit in memory
        raise ProblemError(f"{which} failed: {type(exc).__name__}: {_first_line(exc)}", SMALL_FIX) from None
    tracer = "fx"
    try:
        gm = torch.fx.symbolic_trace(model)
        with torch.no_grad():
            _Recorder(gm).run(*inputs)
    except Exception:  # noqa: BLE001 - fx cannot trace data-dependent Python: try torch.export
        tracer = "export"
        try:
            gm = torch.export.export(model, tuple(inputs), strict=False).module()
            with torch.no_grad():
                _Recorder(gm).run(*inputs)
        except Exception as exc:  # noqa: BLE001 - valid Python no tracer follows: an LLM's job, in one line
            _runs_eagerly(model, inputs, which)
            first = _first_line(exc)
            raise Unsupported(
                f"Python control flow that neither torch.fx nor torch.export can trace ({type(exc).__name__}: {first})"
            ) from None
    returns_tuple = None
    if tracer == "export":  # export always returns a tuple: ask the model itself
        with torch.no_grad():
            returns_tuple = isinstance(model(*inputs), (tuple, list))
    return TracedProblem(Path(path), module, model, inputs, init_inputs, gm, tracer, returns_tuple)


SMALL_FIX = "add get_small_inputs() with small shapes of the same ranks (the Triton interpreter runs them on a CPU)"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:160]


def _runs_eagerly(model: torch.nn.Module, inputs: list[Any], which: str) -> None:
    """A model that fails on its own example inputs is a bad problem (ProblemError), not an LLM's job."""
    try:
        with torch.no_grad():
            model(*inputs)
    except Exception as exc:  # noqa: BLE001 - out of memory, shape mismatch: the problem's own failure
        fix = SMALL_FIX if isinstance(exc, MemoryError) or "alloc" in str(exc) else FORMAT_FIX
        raise ProblemError(f"Model(...)(*{which}) failed: {type(exc).__name__}: {_first_line(exc)}", fix) from None
