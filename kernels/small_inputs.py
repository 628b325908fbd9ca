"""Small shapes for a KernelBench problem that declares no ``get_small_inputs()``.

Real KernelBench files size their tensors with module-level constants (``batch_size = 4096``,
``dim = 393216``) read by ``get_inputs()`` and ``get_init_inputs()``; at full size that is gigabytes and
hours under the Triton interpreter. ``ensure_small_inputs(module)`` finds the int constants (and the ints
inside module-level tuples and lists) those two functions read, maps every large one (> ``KEEP``) to a
small size (the same original value always to the same small value, in the same order, so equal dims stay
equal; small values such as ``dim = 1`` or a kernel size are kept), patches the module's globals and
defines ``get_small_inputs`` from the patched ``get_inputs``. The full-size inputs are never made: the
original ``get_inputs`` is only ever called with the small constants in place.

Each try is checked by building ``Model`` from the patched ``get_init_inputs()`` and running one forward
on the derived inputs; a failure tries a milder ladder (first odd sizes that exercise masks, then
multiples of 16, then powers of two), and when none works a one-line ``JobError`` names the constants.
The derivation is deterministic (no randomness decides a size), so the trusted parent and any other
process that derives it get identical shapes.
"""

from __future__ import annotations

import contextlib
import math
import types
from collections.abc import Iterator
from typing import Any

from tunesmith.runners.errors import JobError

KEEP = 16  # constants up to this are kept (reduction dims, kernel sizes, heads)
MAX_NUMEL = 1 << 21  # a derived input larger than this (elements, all inputs together) is rejected
ATTR = "__tunesmith_small_shapes__"
_ODD = (23, 37, 47, 59, 67, 79, 89, 97, 107, 113, 127, 137, 149, 157, 167, 179)
# (sizes, keep divisibility by the small constants): the first that builds and runs the model wins
LADDERS: tuple[tuple[tuple[int, ...], bool], ...] = (
    (_ODD, False),
    (_ODD, True),
    (tuple(range(32, 32 + 16 * 16, 16)), True),
    (tuple(1 << k for k in range(5, 16)), True),
)
FIX = "add get_small_inputs() with small shapes of the same ranks (the Triton interpreter runs them on a CPU)"


def _names(fn: Any) -> set[str]:
    """Global names read by ``fn`` and the code objects nested in it."""
    out: set[str] = set()
    stack = [getattr(fn, "__code__", None)]
    while stack:
        code = stack.pop()
        if code is None:
            continue
        out.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return out


def _ints(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, (tuple, list)):
        return [i for v in value for i in _ints(v)]
    return []


def _replace(value: Any, mapping: dict[int, int]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return mapping.get(value, value)
    if isinstance(value, (tuple, list)):
        return type(value)(_replace(v, mapping) for v in value)
    return value


def shape_constants(module: Any) -> dict[str, Any]:
    """Module-level ints (or tuples/lists of ints) read by ``get_inputs``/``get_init_inputs``."""
    names = _names(module.get_inputs) | _names(module.get_init_inputs)
    return {n: module.__dict__[n] for n in sorted(names) if n in module.__dict__ and _ints(module.__dict__[n])}


def _mapping(constants: dict[str, Any], ladder: tuple[int, ...], divisible: bool) -> dict[int, int]:
    """Large values in ascending order -> ladder sizes in ascending order, keeping divisibility by small ones."""
    values = sorted({i for v in constants.values() for i in _ints(v)})
    small = [v for v in values if 1 < v <= KEEP] if divisible else []
    mapping: dict[int, int] = {}
    floor = 0
    for v in (v for v in values if v > KEEP):
        step = math.lcm(*[s for s in small if v % s == 0] or [1])
        pick = next((c for c in ladder if c > floor and c % step == 0 and c < v), v)  # none fits: keep v
        mapping[v] = pick
        floor = pick
    return mapping


@contextlib.contextmanager
def _patched(module: Any, constants: dict[str, Any], mapping: dict[int, int]) -> Iterator[None]:
    old = {n: module.__dict__[n] for n in constants}
    module.__dict__.update({n: _replace(v, mapping) for n, v in constants.items()})
    try:
        yield
    except BaseException:
        module.__dict__.update(old)
        raise


def _meta_numel(module: Any) -> int:
    """Elements of ``get_inputs()`` counted on the meta device (nothing allocated)."""
    import torch

    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        inputs = list(module.get_inputs())
    return sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))


def _check(module: Any) -> None:
    """Build Model on the (patched) init inputs and run one forward on the (patched) inputs."""
    import torch

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        inputs = list(module.get_inputs())
        numel = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))
        if numel > MAX_NUMEL:
            raise ValueError(f"{numel} elements")
        init = module.get_init_inputs()
        module.Model(*(init if isinstance(init, (tuple, list)) else [init])).eval()(*inputs)


def ensure_small_inputs(module: Any, name: str = "the problem") -> str:
    """Make ``module.get_small_inputs`` exist; returns the note that says what was derived ('' if declared).

    Patches the module's globals in place (call it right after loading, before ``get_init_inputs``); a
    second call returns the same note. Raises a one-line ``JobError`` when no shrink works.
    """
    if ATTR in module.__dict__:
        return module.__dict__[ATTR]
    if callable(getattr(module, "get_small_inputs", None)):
        module.__dict__[ATTR] = ""
        return ""
    constants = shape_constants(module)
    last = "no large module-level int constants"
    for ladder, divisible in LADDERS:
        mapping = _mapping(constants, ladder, divisible)
        if not mapping:  # nothing to shrink: fine if get_inputs() is already small (sized on the meta device)
            try:
                if _meta_numel(module) <= MAX_NUMEL:
                    _check(module)
                    module.get_small_inputs = module.get_inputs
                    module.__dict__[ATTR] = note = "no get_small_inputs(): get_inputs() is small already"
                    return note
                last = "get_inputs() is large and sized by no module-level constant"
            except Exception as exc:  # noqa: BLE001
                last = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:120]}"
            break
        try:
            with _patched(module, constants, mapping):
                _check(module)
        except Exception as exc:  # noqa: BLE001 - the shrink broke the problem: try a milder one
            last = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:120]}"
            continue
        changed = [f"{n} {_fmt(v)}->{_fmt(_replace(v, mapping))}" for n, v in constants.items()
                   if _replace(v, mapping) != v]
        module.get_small_inputs = module.get_inputs
        note = "no get_small_inputs(): derived small shapes " + ", ".join(changed)
        module.__dict__[ATTR] = note
        return note
    big = [n for n, v in constants.items() if any(i > KEEP for i in _ints(v))]
    what = ", ".join(big) if big else "none found"
    raise JobError(f"{name} has no get_small_inputs() and its shape constants could not be shrunk "
                   f"({what}; {last})", FIX)


def _fmt(value: Any) -> str:
    return str(tuple(value) if isinstance(value, list) else value).replace(" ", "")


def small_shapes_note(path: Any) -> str:
    """Load the problem file at ``path`` and return ``ensure_small_inputs``'s note ('' when it declares them)."""
    from pathlib import Path

    from tunesmith.kernels.reference import load_problem

    return ensure_small_inputs(load_problem(Path(path)), Path(path).name)
