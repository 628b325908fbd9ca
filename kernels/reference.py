"""The trusted side of a generated-kernel evaluation: the problem's reference, its inputs and its outputs.

A problem file is in KernelBench's format (``class Model(nn.Module)``, ``get_inputs()``,
``get_init_inputs()``, and ``get_small_inputs()`` for the interpreter). ``build_reference`` imports it
in the calling (trusted) process, builds ``Model`` under a fixed seed, draws the correctness cases (five
seeds of the input maker, then signed and heavy-tailed redraws of the same shapes) and runs the reference
on its own copies of each. The outputs stay in this process: the worker that runs the candidate gets only
the inputs (``save_inputs``), so nothing it does can read or change what it is compared with.
The caller's random state is left as it was.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tunesmith.runners.errors import JobError

from . import correctness, proof
from .small_inputs import ensure_small_inputs

SEEDS = (0, 1, 2, 3, 4)
MODEL_SEED = 42
POOL_SEEDS = (10_000, 10_001, 10_002)


@dataclass
class ProblemReference:
    """A problem's reference run: cases (name, inputs), the reference's outputs per case, the ops it used."""

    path: Path
    source: str
    init_inputs: list[Any]
    cases: list[correctness.Case]
    expected: list[list[torch.Tensor]]
    ops: Counter[str] = field(default_factory=Counter)
    pool: list[tuple[Any, ...]] = field(default_factory=list)
    pool_expected: list[list[torch.Tensor]] = field(default_factory=list)
    flops: int = 0
    seed: int = MODEL_SEED


def load_problem(path: Path) -> Any:
    """Import a problem file as a fresh module; a one-line JobError if it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise JobError(f"problem file {str(path)!r} does not exist", "give a KernelBench-format .py file")
    name = f"tunesmith_problem_{abs(hash(str(path.resolve())))}"
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - the user's problem file
        raise JobError(f"importing {path.name} failed: {type(exc).__name__}: {exc}"[:300], "fix the problem file") from None
    finally:
        sys.modules.pop(name, None)
    for attr in ("Model", "get_inputs", "get_init_inputs"):
        if not hasattr(module, attr):
            raise JobError(f"{path.name} defines no {attr}", "write the problem in KernelBench format")
    return module


def _inputs(module: Any, small: bool, seed: int) -> tuple[Any, ...]:
    maker = getattr(module, "get_small_inputs", None) if small else module.get_inputs
    if maker is None:
        raise JobError("the problem defines no get_small_inputs()", "add one (small shapes) or evaluate without small")
    torch.manual_seed(seed)
    return correctness.as_tuple(maker())


def _run(model: Any, inputs: tuple[Any, ...], what: str, log: proof.OpLog | None = None) -> list[torch.Tensor]:
    try:
        args = correctness.clone_inputs(inputs)  # the reference runs on its own copies
        with torch.no_grad(), log if log is not None else contextlib.nullcontext():
            out = model(*args)
    except Exception as exc:  # noqa: BLE001 - the reference failing is the problem's fault
        raise JobError(f"the reference failed on {what}: {type(exc).__name__}: {exc}"[:300], "fix the problem file") from None
    outs = correctness.output_tensors(out)
    if not outs or not all(isinstance(t, torch.Tensor) for t in outs):
        raise JobError("the reference returns something other than tensors", "return a tensor or a tuple of them")
    return [t.detach().clone() for t in outs]


def build_reference(path: Path, *, small: bool = False, seeds: tuple[int, ...] = SEEDS, pool: bool = False,
                    seed: int = MODEL_SEED) -> ProblemReference:
    """Run the reference on every correctness case (and, with ``pool``, on the timing pool)."""
    module = load_problem(path)
    if small:  # no get_small_inputs(): derive one by shrinking the shape constants
        ensure_small_inputs(module, Path(path).name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        init = list(correctness.as_tuple(module.get_init_inputs()))
        torch.manual_seed(seed)
        try:
            model = module.Model(*init).eval()
        except Exception as exc:  # noqa: BLE001
            raise JobError(f"constructing Model failed: {type(exc).__name__}: {exc}"[:300], "fix the problem file") from None
        cases = correctness.make_cases(lambda s, _device: _inputs(module, small, s), seeds, "cpu")
        log = proof.OpLog()
        expected = [_run(model, c.inputs, c.name, log if i == 0 else None) for i, c in enumerate(cases)]
        ref = ProblemReference(Path(path), Path(path).read_text(encoding="utf-8"), init, cases, expected,
                               ops=log.ops, seed=seed)
        if pool:
            ref.pool = [_inputs(module, False, s) for s in POOL_SEEDS]
            ref.pool_expected = [_run(model, p, f"timing pool {i}") for i, p in enumerate(ref.pool)]
            from torch.utils.flop_counter import FlopCounterMode

            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                model(*correctness.clone_inputs(ref.pool[0]))
            ref.flops = int(counter.get_total_flops())
    return ref


def save_inputs(ref: ProblemReference, path: Path) -> None:
    """What the worker may see: the seed, init inputs, case inputs and output sizes (it draws the timing
    pool itself from ``POOL_SEEDS``, so full-size inputs never go through the disk)."""
    torch.save({
        "seed": ref.seed,
        "init_inputs": ref.init_inputs,
        "cases": [{"name": c.name, "inputs": list(c.inputs)} for c in ref.cases],
        "out_nbytes": [t.numel() * t.element_size() for t in ref.expected[0]],
    }, path)


def bytes_moved(inputs: tuple[Any, ...], outputs: list[torch.Tensor]) -> int:
    """The bytes a kernel must at least read and write: its tensor inputs and outputs, once each."""
    return sum(t.numel() * t.element_size() for t in [*inputs, *outputs] if isinstance(t, torch.Tensor))
