"""One normalised call: map an op name and its arguments onto primitive ``Val`` ops.

Compound operations decompose into the primitives a user would write (softmax into amax, sub, exp, sum,
div; layer norm into mean, sub, var, rsqrt, mul, add), so both spellings reach the same templates.
"""

from __future__ import annotations

from typing import Any

import torch

from .ir import POINTWISE, REDUCTIONS, SHAPE_OPS, Unsupported, Val, norm_dims, reduced
from .rewrites import MORE_POINTWISE, cosine_similarity, einsum, flip, more_pointwise, shifted

F32 = torch.float32
IDENTITY = {"contiguous", "clone", "detach", "identity", "float", "to", "type_as", "type", "alias"}


def call_op(nz: Any, name: str, args: tuple, kw: dict, value: Any) -> Any:  # noqa: C901 - a dispatch table
    """The Val (or tuple of Vals, or constant) for ``name(*args, **kw)``; Unsupported names the op."""
    from .normalize import _arg

    a = lambda field, default=None: _arg(args, kw, name, field, default)  # noqa: E731
    x = args[0] if args else kw.get("input")
    if name == "getitem":
        if isinstance(x, tuple) and all(isinstance(v, Val) for v in x):
            return x[args[1]]
        raise Unsupported("indexing or slicing a tensor (x[...]) is not covered by a template")
    if name == "getattr":
        if isinstance(x, tuple) and args[1] in ("values", "indices"):
            return x[0 if args[1] == "values" else 1]
        if args[1] in ("T", "mT"):
            return view(nz, args[1], x, (), {}, value)
        raise Unsupported(f"attribute .{args[1]} of a tensor")
    if isinstance(x, Val) and x.op == "zeros" and isinstance(value, torch.Tensor) and (
            name in SHAPE_OPS or name in ("select", "narrow")):
        return nz.intern(Val("zeros", (), tuple(value.shape), F32, {}))  # a view of zeros is zeros
    if name in SHAPE_OPS:
        return view(nz, name, x, args[1:], kw, value)
    if name in ("zeros_like", "cat", "concat", "concatenate", "narrow", "select"):
        return shifted(nz, name, args, kw, value)
    if name in IDENTITY:
        if isinstance(value, torch.Tensor) and not value.dtype.is_floating_point:
            raise Unsupported(f"a cast to {value.dtype} (the templates compute floating point only)")
        return x
    if name in ("dropout", "alpha_dropout"):
        if a("p", 0.5) == 0 or not a("training", True):
            return x
        raise Unsupported("dropout with p > 0 in training mode (random: no kernel can match it)")
    if name in ("add", "sub") and a("alpha", 1) != 1:
        return nz.pw(name, x, nz.pw("mul", a("other"), a("alpha")))
    if name == "rsub":
        return nz.pw("sub", args[1], x)
    if name == "div" and kw.get("rounding_mode"):
        raise Unsupported(f"div with rounding_mode={kw['rounding_mode']!r}")
    if name == "square":
        return nz.pw("mul", x, x)
    if name in ("relu6", "hardtanh", "clamp", "clamp_min", "clamp_max"):
        lo = {"relu6": 0.0, "hardtanh": a("min_val", -1.0)}.get(name, a("min"))
        hi = {"relu6": 6.0, "hardtanh": a("max_val", 1.0)}.get(name, a("max"))
        if name == "clamp_max":
            lo = None
        if isinstance(lo, Val) or isinstance(hi, Val):
            out = x
            if lo is not None:
                out = nz.pw("maximum", out, lo)
            return nz.pw("minimum", out, hi) if hi is not None else out
        return nz.pw("clamp", x, lo=lo, hi=hi)
    if name in ("max", "min") and len(args) > 1 and isinstance(args[1], Val):
        return nz.pw("maximum" if name == "max" else "minimum", x, args[1])
    if name in ("max", "min", "maximum", "minimum") and isinstance(value, tuple):
        keep = a("keepdim", False)
        red = "amax" if name == "max" else "amin"
        return (nz.red(red, x, a("dim"), keep), nz.red("arg" + name, x, a("dim"), keep))
    if name in ("max", "min"):
        return nz.red("amax" if name == "max" else "amin", x, a("dim"), a("keepdim", False))
    if name in ("sum", "mean", "amax", "amin", "argmax", "argmin", "prod"):
        return nz.red(name, x, a("dim"), a("keepdim", False))
    if name in ("norm", "linalg_vector_norm", "linalg_norm"):
        return vector_norm(nz, x, a("p" if name == "norm" else "ord"), a("dim"), a("keepdim", False))
    if name in LOSSES:
        return loss(nz, name, x, a("target"), a("reduction", "mean"), a)
    if name in ("var", "std"):
        corr = kw.get("correction")
        unbiased = a("unbiased", True)
        if corr is None:
            corr = 1 if (unbiased if isinstance(unbiased, bool) else True) else 0
        v = nz.red("var", x, a("dim"), a("keepdim", False), correction=corr)
        return nz.pw("sqrt", v) if name == "std" else v
    if name in ("softmax", "log_softmax", "logsumexp"):
        if a("dim") is None or isinstance(a("dim"), (list, tuple)) and name != "logsumexp":
            raise Unsupported(f"{name} without a single dim")
        keep = name != "logsumexp" or a("keepdim", False)
        m = nz.red("amax", x, a("dim"), True)
        s = nz.red("sum", nz.pw("exp", nz.pw("sub", x, m)), a("dim"), keep)
        if name == "softmax":
            return nz.pw("div", nz.pw("exp", nz.pw("sub", x, m)), s)
        if name == "log_softmax":
            return nz.pw("sub", nz.pw("sub", x, m), nz.pw("log", s))
        return nz.pw("add", nz.pw("log", s), m if keep else nz.red("amax", x, a("dim"), False))
    if name in ("layer_norm", "rms_norm"):
        shape = tuple(a("normalized_shape"))
        if not shape or tuple(x.shape[-len(shape):]) != shape:
            raise Unsupported(f"{name} with normalized_shape {list(shape)} on a tensor of shape {list(x.shape)}")
        dims = list(range(len(x.shape) - len(shape), len(x.shape)))
        eps = a("eps") if a("eps") is not None else (1e-5 if name == "layer_norm" else torch.finfo(F32).eps)
        if name == "layer_norm":
            mean = nz.red("mean", x, dims, True)
            var = nz.red("var", x, dims, True, correction=0)
            out = nz.pw("mul", nz.pw("sub", x, mean), nz.pw("rsqrt", nz.pw("add", var, eps)))
        else:
            ms = nz.red("mean", nz.pw("mul", x, x), dims, True)
            out = nz.pw("mul", x, nz.pw("rsqrt", nz.pw("add", ms, eps)))
        if a("weight") is not None:
            out = nz.pw("mul", out, a("weight"))
        if name == "layer_norm" and a("bias") is not None:
            out = nz.pw("add", out, a("bias"))
        return out
    if name == "instance_norm_module":
        x, w, b, eps = args
        rank = len(nz.tensor(x, name).shape)
        if rank < 3:
            raise Unsupported(f"instance norm of a rank-{rank} tensor")
        dims = list(range(2, rank))
        mean = nz.red("mean", x, dims, True)
        var = nz.red("var", x, dims, True, correction=0)
        out = nz.pw("mul", nz.pw("sub", x, mean), nz.pw("rsqrt", nz.pw("add", var, eps)))
        per_channel = (x.shape[1],) + (1,) * (rank - 2)
        if w is not None:
            out = nz.pw("mul", out, view(nz, "view", w, (per_channel,), {}, None))
        if b is not None:
            out = nz.pw("add", out, view(nz, "view", b, (per_channel,), {}, None))
        return out
    if name == "normalize":
        p, dim, eps = a("p", 2.0), a("dim", 1), a("eps", 1e-12)
        if p != 2:
            raise Unsupported(f"normalize with p={p} (only p=2 is covered)")
        norm = nz.pw("sqrt", nz.red("sum", nz.pw("mul", x, x), dim, True))
        return nz.pw("div", x, nz.pw("clamp", norm, lo=eps, hi=None))
    if name == "linear":
        w = a("weight")
        out = matmul(nz, x, view(nz, "t", w, (), {}, None))
        return nz.pw("add", out, a("bias")) if a("bias") is not None else out
    if name == "addmm":
        beta, alpha = kw.get("beta", 1), kw.get("alpha", 1)
        mm = matmul(nz, args[1], args[2])
        mm = nz.pw("mul", mm, alpha) if alpha != 1 else mm
        return nz.pw("add", mm, nz.pw("mul", x, beta) if beta != 1 else x)
    if name == "matmul":
        return matmul(nz, x, a("other"))
    if name == "einsum":
        return einsum(nz, args, value)
    if name in ("cumsum", "cumprod"):
        v = nz.tensor(x, name)
        dims = norm_dims(a("dim"), len(v.shape), name, allow_all=False)
        if v.op == "shift1":  # an exclusive scan: cumsum of x shifted one place with a zero = cumsum(x) - x
            if name != "cumsum" or v.kw["dim"] != dims:
                raise Unsupported(f"a {name} of a shifted tensor (only an exclusive cumsum along the shift is covered)")
            inner = v.args[0]
            return nz.pw("sub", nz.intern(Val(name, (inner,), inner.shape, F32, {"dim": dims})), inner)
        if v.op == "flip":  # a reverse scan: flip(cumsum(flip(x))) = sum(x) - cumsum(x) + x
            if name != "cumsum" or v.kw["dim"] != dims:
                raise Unsupported(f"a {name} of a flipped tensor (only a reverse cumsum along the flipped dim is covered)")
            inner = v.args[0]
            fwd = nz.intern(Val(name, (inner,), inner.shape, F32, {"dim": dims}))
            rev = nz.pw("add", nz.pw("sub", nz.red("sum", inner, list(dims), True), fwd), inner)
            return nz.intern(Val("flip", (rev,), rev.shape, F32, {"dim": dims, "reversed_scan": True}))
        return nz.intern(Val(name, (v,), v.shape, F32, {"dim": dims}))
    if name in MORE_POINTWISE:
        return more_pointwise(nz, name, x, a)
    if name == "softmin":
        return call_op(nz, "softmax", (nz.pw("neg", x), a("dim")), {}, value)
    if name == "cosine_similarity":
        return cosine_similarity(nz, x, a("x2"), a("dim", 1), a("eps", 1e-8))
    if name == "pairwise_distance":
        diff = nz.pw("add", nz.pw("sub", x, a("x2")), a("eps", 1e-6))
        return vector_norm(nz, diff, a("p", 2.0), -1, a("keepdim", False))
    if name == "flip":
        return flip(nz, x, a("dims"))
    if name == "triplet_margin_loss":
        if a("swap", False):
            raise Unsupported("triplet_margin_loss with swap=True")
        dist = lambda u, v: call_op(nz, "pairwise_distance", (u, v, a("p", 2.0), a("eps", 1e-6)), {}, None)  # noqa: E731
        term = nz.pw("clamp", nz.pw("add", nz.pw("sub", dist(x, a("positive")), dist(x, a("negative"))),
                                    float(a("margin", 1.0))), lo=0.0, hi=None)
        return reduce_loss(nz, "triplet_margin_loss", term, a("reduction", "mean"))
    if name == "gelu":
        approx = a("approximate", "none") or "none"
        return nz.pw("gelu", x, approximate=approx)
    if name in ("leaky_relu", "elu", "softplus"):
        extra = {
            "leaky_relu": {"slope": a("negative_slope", 0.01)},
            "elu": {"alpha": a("alpha", 1.0)},
            "softplus": {"beta": a("beta", 1.0), "threshold": a("threshold", 20.0)},
        }[name]
        return nz.pw(name, x, **extra)
    if name == "where":
        return nz.pw("where", a("condition"), a("input"), a("other"))
    if name == "pow":
        return nz.pw("pow", x, a("exponent"))
    if name in POINTWISE:
        operands = [v for v in args if not isinstance(v, (str, type(None)))]
        return nz.pw(name, *operands)
    raise Unsupported(f"no template covers {name}")


def view(nz: Any, name: str, x: Any, args: tuple, kw: dict, value: Any) -> Val:
    """A view op: replayed in the wrapper on an input or parameter; an identity on a computed value."""
    if not isinstance(x, Val):
        raise Unsupported(f"{name} of a non-tensor value")
    if name in ("contiguous",):
        return x
    if x.is_leaf:
        cargs, ckw = tuple(_const(v) for v in args), {k: _const(v) for k, v in kw.items()}
        meta = torch.empty(x.shape, device="meta")
        shape = tuple((getattr(meta, name) if name in ("T", "mT") else getattr(meta, name)(*cargs, **ckw)).shape)
        views = x.kw["views"] + ((name, cargs, ckw),)
        return nz.intern(Val("leaf", (), shape, x.dtype, {**x.kw, "views": views}))
    if isinstance(value, torch.Tensor) and tuple(value.shape) == x.shape:
        return x
    if (isinstance(value, torch.Tensor) and x.op in REDUCTIONS and not x.kw["keepdim"]
            and tuple(value.shape) == reduced(x.args[0].shape, x.kw["dim"], True)):
        return nz.intern(Val(x.op, x.args, tuple(value.shape), x.dtype, {**x.kw, "keepdim": True}))  # dim put back
    raise Unsupported(f"a {name} of a computed value (views are covered on inputs and parameters only)")


def _const(v: Any) -> Any:
    if isinstance(v, Val):
        raise Unsupported("a view whose size is a tensor")
    if isinstance(v, torch.Size):
        return tuple(v)
    if isinstance(v, (list, tuple)):
        return tuple(_const(i) for i in v)
    if isinstance(v, torch.dtype):
        raise Unsupported("a view with a dtype")
    return v


def matmul(nz: Any, a: Any, b: Any) -> Val:
    """A matmul Val with torch.matmul's shape rules (1-D operands become a matrix-vector product)."""
    a, b = nz.tensor(a, "matmul"), nz.tensor(b, "matmul")
    if len(a.shape) == 1 and len(b.shape) == 1:
        raise Unsupported("a dot product of two vectors (no matmul template for it)")
    sa = a.shape if len(a.shape) > 1 else (1,) + a.shape
    sb = b.shape if len(b.shape) > 1 else b.shape + (1,)
    if sa[-1] != sb[-2]:
        raise Unsupported(f"matmul of {a.shape} and {b.shape}")
    batch = tuple(torch.broadcast_shapes(sa[:-2], sb[:-2]))
    out = batch + ((sa[-2],) if len(a.shape) > 1 else ()) + ((sb[-1],) if len(b.shape) > 1 else ())
    return nz.intern(Val("matmul", (a, b), out, F32, {}))


LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div")


def vector_norm(nz: Any, x: Any, p: Any, dim: Any, keepdim: bool) -> Val:
    """||x||_p over ``dim`` (all dims when None) from primitives: 2 (and 'fro', None), 1, inf, -inf, other p."""
    if p in (None, "fro", 2, 2.0):
        return nz.pw("sqrt", nz.red("sum", nz.pw("mul", x, x), dim, keepdim))
    if p in (1, 1.0):
        return nz.red("sum", nz.pw("abs", x), dim, keepdim)
    if p == float("inf"):
        return nz.red("amax", nz.pw("abs", x), dim, keepdim)
    if p == float("-inf"):
        return nz.red("amin", nz.pw("abs", x), dim, keepdim)
    if isinstance(p, (int, float)) and p > 0:
        total = nz.red("sum", nz.pw("pow", nz.pw("abs", x), float(p)), dim, keepdim)
        return nz.pw("pow", total, 1.0 / p)
    raise Unsupported(f"a norm with p={p!r}")


def loss(nz: Any, name: str, x: Any, target: Any, reduction: str, a: Any) -> Val:
    """Pointwise loss terms reduced as ``reduction`` says ('mean', 'sum', 'none', 'batchmean' for kl_div)."""
    if name == "kl_div":
        t = target
        if a("log_target", False):
            term = nz.pw("mul", nz.pw("exp", t), nz.pw("sub", t, x))
        else:  # xlogy(t, t) - t * x: 0 where t == 0, nan where t < 0, as torch
            xlogy = nz.pw("where", nz.pw("eq", t, 0.0), 0.0, nz.pw("mul", t, nz.pw("log", t)))
            term = nz.pw("sub", xlogy, nz.pw("mul", t, x))
    else:
        d = nz.pw("sub", x, target)
        ad = nz.pw("abs", d)
        if name == "mse_loss":
            term = nz.pw("mul", d, d)
        elif name == "l1_loss":
            term = ad
        else:
            beta = a("beta", 1.0) if name == "smooth_l1_loss" else a("delta", 1.0)
            quad = nz.pw("mul", nz.pw("mul", d, d), 0.5 / beta if name == "smooth_l1_loss" else 0.5)
            lin = nz.pw("sub", ad, 0.5 * beta) if name == "smooth_l1_loss" else nz.pw("mul", nz.pw("sub", ad, 0.5 * beta), beta)
            if beta == 0:
                raise Unsupported(f"{name} with beta/delta 0")
            term = nz.pw("where", nz.pw("lt", ad, beta), quad, lin)
    return reduce_loss(nz, name, term, reduction)


def reduce_loss(nz: Any, name: str, term: Val, reduction: str) -> Val:
    """``term`` reduced as a loss's ``reduction`` says."""
    if reduction == "none":
        return term
    if reduction == "sum":
        return nz.red("sum", term, None, False)
    if reduction == "mean":
        return nz.red("mean", term, None, False)
    if reduction == "batchmean" and term.shape:
        return nz.pw("div", nz.red("sum", term, None, False), float(term.shape[0]))
    raise Unsupported(f"{name} with reduction={reduction!r}")
