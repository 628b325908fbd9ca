"""Rewrites that reach the templates through the primitives: more activations, cosine similarity,
reverse and exclusive scans (flip, a one-place zero shift) and matmul-shaped einsums.

Each returns primitive ``Val`` ops, or a marker (``flip``, ``zeros``, ``shiftcat``, ``shift1``) that only
the consumer named in its docstring may take; a marker left in a finished graph is refused at plan time.
"""

from __future__ import annotations

from typing import Any

import torch

from .ir import Unsupported, Val, norm_dims


def _view(*args: Any) -> Val:
    from .decompose import view

    return view(*args)


F32 = torch.float32
MORE_POINTWISE = ("softsign", "logsigmoid", "tanhshrink", "hardshrink", "softshrink", "celu", "threshold")


def more_pointwise(nz: Any, name: str, x: Any, a: Any) -> Val:
    """Activations written as the primitives they are made of (softsign, logsigmoid, shrinks, celu, threshold)."""
    x = nz.tensor(x, name)
    if name == "softsign":
        return nz.pw("div", x, nz.pw("add", nz.pw("abs", x), 1.0))
    if name == "logsigmoid":  # -softplus(-x): exact for large |x| on both sides
        return nz.pw("neg", nz.pw("softplus", nz.pw("neg", x), beta=1.0, threshold=20.0))
    if name == "tanhshrink":
        return nz.pw("sub", x, nz.pw("tanh", x))
    if name == "hardshrink":
        lam = a("lambd", 0.5)
        return nz.pw("where", nz.pw("gt", nz.pw("abs", x), lam), x, 0.0)
    if name == "softshrink":
        lam = a("lambd", 0.5)
        low = nz.pw("where", nz.pw("lt", x, -lam), nz.pw("add", x, lam), 0.0)
        return nz.pw("where", nz.pw("gt", x, lam), nz.pw("sub", x, lam), low)
    if name == "celu":
        alpha = a("alpha", 1.0)
        if alpha == 0:
            raise Unsupported("celu with alpha 0")
        neg = nz.pw("mul", nz.pw("expm1", nz.pw("div", x, float(alpha))), float(alpha))
        return nz.pw("where", nz.pw("gt", x, 0.0), x, neg)
    th, val = a("threshold"), a("value")
    if isinstance(th, Val) or isinstance(val, Val) or th is None or val is None:
        raise Unsupported("threshold with tensor or missing threshold/value")
    return nz.pw("where", nz.pw("gt", x, th), x, val)


def cosine_similarity(nz: Any, x1: Any, x2: Any, dim: Any, eps: float) -> Val:
    """sum((x1 / max(||x1||, eps)) * (x2 / max(||x2||, eps)), dim), as torch computes it."""
    x1, x2 = nz.tensor(x1, "cosine_similarity"), nz.tensor(x2, "cosine_similarity")
    shape = tuple(torch.broadcast_shapes(x1.shape, x2.shape))
    if x1.shape != shape or x2.shape != shape:
        raise Unsupported("cosine_similarity of operands that broadcast")
    dims = norm_dims(dim, len(shape), "cosine_similarity", allow_all=False)
    n1 = nz.pw("clamp", nz.pw("sqrt", nz.red("sum", nz.pw("mul", x1, x1), list(dims), True)), lo=eps, hi=None)
    n2 = nz.pw("clamp", nz.pw("sqrt", nz.red("sum", nz.pw("mul", x2, x2), list(dims), True)), lo=eps, hi=None)
    return nz.red("sum", nz.pw("mul", nz.pw("div", x1, n1), nz.pw("div", x2, n2)), list(dims), False)


def flip(nz: Any, x: Any, dims: Any) -> Val:
    """flip along one dim: undoes a reverse scan's marker, else a marker that only a cumsum may consume."""
    x = nz.tensor(x, "flip")
    d = norm_dims(dims, len(x.shape), "flip", allow_all=False)
    if x.op == "flip" and x.kw["dim"] == d:
        return x.args[0]
    return nz.intern(Val("flip", (x,), x.shape, F32, {"dim": d}))


def shifted(nz: Any, name: str, args: tuple, kw: dict, value: Any) -> Val:
    """zeros_like, cat and narrow as far as an exclusive scan needs them; views of inputs for select/narrow.

    ``cat((zeros with size 1 along d, x), d).narrow(d, 0, n)`` is x shifted one place along d (a ``shift1``
    marker that only a cumsum along d may consume); anything else that needs a concatenation is refused.
    """
    x = args[0] if args else kw.get("input", kw.get("tensors"))
    if name == "zeros_like":
        if not isinstance(value, torch.Tensor) or not value.dtype.is_floating_point:
            raise Unsupported("zeros_like of a non-float tensor")
        return nz.intern(Val("zeros", (), tuple(value.shape), F32, {}))
    if name in ("select", "narrow"):
        x = nz.tensor(x, name)
        if x.is_leaf:
            return _view(nz, name, x, args[1:], kw, value)
        dim = args[1] if len(args) > 1 else kw.get("dim")
        if name == "narrow" and x.op == "shiftcat" and isinstance(dim, int):
            d = dim % len(x.shape)
            start = args[2] if len(args) > 2 else kw.get("start")
            length = args[3] if len(args) > 3 else kw.get("length")
            inner = x.args[0]
            if (d,) == x.kw["dim"] and start == 0 and length == inner.shape[d]:
                return nz.intern(Val("shift1", (inner,), inner.shape, F32, {"dim": (d,)}))
        raise Unsupported(f"{name} of a computed value")
    parts = list(x) if isinstance(x, (list, tuple)) else []
    dim = args[1] if len(args) > 1 else kw.get("dim", 0)
    if len(parts) == 2 and all(isinstance(p, Val) for p in parts) and isinstance(dim, int):
        z, inner = parts
        d = dim % len(inner.shape)
        if z.op == "zeros" and z.shape[d] == 1 and len(z.shape) == len(inner.shape) and all(
                a == b for i, (a, b) in enumerate(zip(z.shape, inner.shape, strict=True)) if i != d):
            return nz.intern(Val("shiftcat", (inner,), tuple(value.shape), F32, {"dim": (d,)}))
    raise Unsupported("a concatenation (cat) other than a one-place zero shift before a cumsum")


def einsum(nz: Any, args: tuple, value: Any) -> Val:
    """A two-operand einsum that is a matmul: ``...ic,ck->...ik`` (either operand possibly transposed)."""
    spec, ops = args[0], list(args[1:])
    if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
        ops = list(ops[0])
    bad = Unsupported(f"einsum {spec!r} (only a two-operand matmul-shaped einsum is covered)")
    if not isinstance(spec, str) or len(ops) != 2 or "." in spec or "->" not in spec:
        raise bad
    lhs, out = spec.replace(" ", "").split("->")
    parts = lhs.split(",")
    if len(parts) != 2 or any(len(set(p)) != len(p) for p in (*parts, out)):
        raise bad
    (sa, sb), (a, b) = parts, ops
    a, b = nz.tensor(a, "einsum"), nz.tensor(b, "einsum")
    contracted = [c for c in sa if c in sb and c not in out]
    if len(contracted) != 1 or set(sa) | set(sb) != set(out) | set(contracted) or len(sa) < 2 or len(sb) < 2:
        raise bad
    c = contracted[0]
    if sa[-1] != c and len(sa) >= 2 and sa[-2] == c:
        a, sa = _view(nz, "mT", a, (), {}, None), sa[:-2] + sa[-1] + sa[-2]
    if sb[-2] != c and sb[-1] == c:
        b, sb = _view(nz, "mT", b, (), {}, None), sb[:-2] + sb[-1] + sb[-2]
    if sa[-1] != c or sb[-2] != c:
        raise bad
    if len(sb) == 2:
        expect = sa[:-1] + sb[-1]
    elif sa[:-2] == sb[:-2]:
        expect = sa[:-2] + sa[-2] + sb[-1]
    else:
        raise bad
    if out != expect:
        raise bad
    from .decompose import matmul

    return matmul(nz, a, b)
