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
REDUCTIONS = frozenset("sum mean amax amin argmax argmin var prod".split())
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


def reduced(shape: tuple[int, ...], dims: int | tuple[int, ...], keepdim: bool) -> tuple[int, ...]:
    """The shape after reducing ``dims``."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def norm_dims(dim: Any, rank: int, what: str, *, allow_all: bool = True) -> tuple[int, ...]:
    """Sorted non-negative dims from an int, a list, or None (every dim); they must be adjacent."""
    if rank == 0:
        raise Unsupported(f"{what} of a 0-dim tensor")
    if dim is None or (isinstance(dim, (list, tuple, torch.Size)) and len(dim) == 0):
        if not allow_all:
            raise Unsupported(f"{what} without a dim")
        return tuple(range(rank))
    raw = list(dim) if isinstance(dim, (list, tuple, torch.Size)) else [dim]
    for d in raw:
        if not isinstance(d, int) or not -rank <= d < rank:
            raise Unsupported(f"{what} with dim={dim!r} on a rank-{rank} tensor")
    dims = tuple(sorted({d % rank for d in raw}))
    if not allow_all and len(dims) != 1:
        raise Unsupported(f"{what} over several dims {list(dims)}")
    if dims != tuple(range(dims[0], dims[-1] + 1)):
        raise Unsupported(f"{what} over dims {list(dims)} that are not adjacent")
    return dims


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
            rank = len(v.args[0].shape)
            dims = ",".join(str(d - rank) for d in v.kw["dim"])
            extra = f"[dim={dims}{',keep' if v.kw.get('keepdim') else ''}]"
        elif v.op == "gelu" and v.kw.get("approximate") == "tanh":
            extra = "[tanh]"
        names.append(v.op + extra)
    return names
