"""The small op vocabulary the templates understand, and the graph value type.

Every spelling of an operation (``torch.softmax``, ``F.softmax``, ``x.softmax``, ``nn.Softmax``, the ATen op
from ``torch.export``) becomes one ``Val`` op; compound operations (softmax, norms, log-sum-exp, linear)
are decomposed into the same primitive ops a user would write out, so that a graph is matched by what it
computes, not by how it was spelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

POINTWISE = frozenset(
    "add sub mul div neg relu gelu silu sigmoid tanh exp log log1p expm1 sqrt rsqrt pow abs clamp where "
    "gt lt ge le eq ne maximum minimum leaky_relu hardswish hardsigmoid elu selu softplus mish erf sin cos "
    "exp2 log2 floor ceil reciprocal sign".split()
)
REDUCTIONS = frozenset("sum mean amax amin argmax argmin var".split())
SCANS = frozenset({"cumsum", "cumprod"})
SHAPE_OPS = frozenset(
    "transpose t permute view reshape unsqueeze squeeze flatten contiguous expand swapaxes T mT".split()
)


class Unsupported(Exception):
    """The graph holds something no template covers; ``str(exc)`` is the one-line reason."""


@dataclass(eq=False)
class Val:
    """One value of the normalised graph.

    ``op`` is ``"leaf"`` for a forward argument or a parameter/buffer (``kw["source"]`` is
    ``("input", index, name)`` or ``("param", qualname)``; ``kw["views"]`` lists view ops replayed on it in
    the wrapper), a POINTWISE/REDUCTIONS/SCANS name, or ``"matmul"``. ``args`` hold Vals or Python scalars.
    """

    op: str
    args: tuple[Any, ...]
    shape: tuple[int, ...]
    dtype: torch.dtype
    kw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_leaf(self) -> bool:
        return self.op == "leaf"

    def vals(self) -> list[Val]:
        """The Val arguments (scalars skipped)."""
        return [a for a in self.args if isinstance(a, Val)]


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of a Val, or () for a Python scalar."""
    return x.shape if isinstance(x, Val) else ()


def broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """torch's broadcast of several shapes, or Unsupported naming them."""
    try:
        return tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        raise Unsupported(f"shapes {list(shapes)} do not broadcast") from None


def reduced(shape: tuple[int, ...], dim: int, keepdim: bool) -> tuple[int, ...]:
    """The shape after reducing ``dim``."""
    if keepdim:
        return shape[:dim] + (1,) + shape[dim + 1 :]
    return shape[:dim] + shape[dim + 1 :]


def norm_dim(dim: Any, rank: int, what: str) -> int:
    """A single non-negative dim from an int or a one-element list; Unsupported for several or none."""
    if isinstance(dim, (list, tuple, torch.Size)):
        if len(dim) != 1:
            raise Unsupported(f"{what} over several dims {list(dim)} (no template reduces more than one dim)")
        dim = dim[0]
    if dim is None:
        raise Unsupported(f"{what} over the whole tensor (no template reduces to a scalar)")
    if not isinstance(dim, int) or not -max(rank, 1) <= dim < max(rank, 1):
        raise Unsupported(f"{what} with dim={dim!r} on a rank-{rank} tensor")
    return dim % max(rank, 1)


def topo(outputs: list[Val]) -> list[Val]:
    """All Vals reachable from ``outputs``, each after its arguments."""
    order: list[Val] = []
    seen: set[int] = set()

    def visit(v: Val) -> None:
        if id(v) in seen:
            return
        seen.add(id(v))
        for a in v.vals():
            visit(a)
        order.append(v)

    for o in outputs:
        visit(o)
    return order


def op_names(outputs: list[Val]) -> list[str]:
    """The normalised op names in topological order (leaves left out): the stable part of a signature."""
    names = []
    for v in topo(outputs):
        if v.is_leaf:
            continue
        extra = ""
        if v.op in REDUCTIONS or v.op in SCANS:
            extra = f"[dim={v.kw['dim'] - len(v.args[0].shape)}{',keep' if v.kw.get('keepdim') else ''}]"
        elif v.op == "gelu" and v.kw.get("approximate") == "tanh":
            extra = "[tanh]"
        names.append(v.op + extra)
    return names
