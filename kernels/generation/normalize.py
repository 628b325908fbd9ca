"""Turn a traced fx graph (symbolic_trace or torch.export) into the small vocabulary of ``ir``.

call_function, call_method and call_module spellings of one operation land on the same op; compound
operations are decomposed into primitives (softmax -> amax, sub, exp, sum, div), so that a written-out
softmax or norm gives the same graph as the library call.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx
from torch import nn

from .ir import POINTWISE, REDUCTIONS, SCANS, SHAPE_OPS, Unsupported, Val, broadcast, norm_dims, reduced

F32 = torch.float32
ALIASES = {
    "iadd": "add", "radd": "add", "isub": "sub", "imul": "mul", "truediv": "div", "itruediv": "div",
    "true_divide": "div", "multiply": "mul", "subtract": "sub", "divide": "div", "mm": "matmul",
    "bmm": "matmul", "__matmul__": "matmul", "expit": "sigmoid", "_softmax": "softmax",
    "_log_softmax": "log_softmax", "square": "square", "max_other": "maximum", "negative": "neg",
    "greater": "gt", "less": "lt", "clip": "clamp", "clamp_min": "clamp_min", "swish": "silu",
    "vector_norm": "linalg_vector_norm", "frobenius_norm": "norm", "_threshold": "threshold",
}
OPERATOR_NAMES = {
    operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "div",
    operator.neg: "neg", operator.pow: "pow", operator.matmul: "matmul", operator.gt: "gt",
    operator.lt: "lt", operator.ge: "ge", operator.le: "le", operator.eq: "eq", operator.ne: "ne",
    operator.iadd: "add", operator.imul: "mul", operator.isub: "sub", operator.itruediv: "div",
    operator.getitem: "getitem", getattr: "getattr", operator.abs: "abs",
}
SIGS = {
    "softmax": ["input", "dim"], "log_softmax": ["input", "dim"], "sum": ["input", "dim", "keepdim"],
    "mean": ["input", "dim", "keepdim"], "amax": ["input", "dim", "keepdim"], "amin": ["input", "dim", "keepdim"],
    "max": ["input", "dim", "keepdim"], "min": ["input", "dim", "keepdim"], "argmax": ["input", "dim", "keepdim"],
    "argmin": ["input", "dim", "keepdim"], "logsumexp": ["input", "dim", "keepdim"],
    "var": ["input", "dim", "unbiased", "keepdim"], "std": ["input", "dim", "unbiased", "keepdim"],
    "cumsum": ["input", "dim"], "cumprod": ["input", "dim"],
    "layer_norm": ["input", "normalized_shape", "weight", "bias", "eps"],
    "rms_norm": ["input", "normalized_shape", "weight", "eps"], "normalize": ["input", "p", "dim", "eps"],
    "clamp": ["input", "min", "max"], "clamp_min": ["input", "min"], "clamp_max": ["input", "max"],
    "hardtanh": ["input", "min_val", "max_val"], "leaky_relu": ["input", "negative_slope"],
    "gelu": ["input", "approximate"], "pow": ["input", "exponent"], "where": ["condition", "input", "other"],
    "add": ["input", "other", "alpha"], "sub": ["input", "other", "alpha"], "matmul": ["input", "other"],
    "linear": ["input", "weight", "bias"], "elu": ["input", "alpha"], "softplus": ["input", "beta", "threshold"],
    "dropout": ["input", "p", "training"], "prod": ["input", "dim", "keepdim"],
    "norm": ["input", "p", "dim", "keepdim"], "linalg_vector_norm": ["input", "ord", "dim", "keepdim"],
    "linalg_norm": ["input", "ord", "dim", "keepdim"],
    "mse_loss": ["input", "target", "size_average", "reduce", "reduction"],
    "l1_loss": ["input", "target", "size_average", "reduce", "reduction"],
    "smooth_l1_loss": ["input", "target", "size_average", "reduce", "reduction", "beta"],
    "huber_loss": ["input", "target", "reduction", "delta"],
    "kl_div": ["input", "target", "size_average", "reduce", "reduction", "log_target"], "celu": ["input", "alpha"],
    "hardshrink": ["input", "lambd"], "softshrink": ["input", "lambd"], "threshold": ["input", "threshold", "value"],
    "softmin": ["input", "dim"], "cosine_similarity": ["x1", "x2", "dim", "eps"],
    "pairwise_distance": ["x1", "x2", "p", "eps", "keepdim"],
    "triplet_margin_loss": ["anchor", "positive", "negative", "margin", "p", "eps", "swap", "size_average",
                            "reduce", "reduction"], "flip": ["input", "dims"],
}
MODULE_OPS = {
    nn.ReLU: "relu", nn.SiLU: "silu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardswish: "hardswish",
    nn.Hardsigmoid: "hardsigmoid", nn.Mish: "mish", nn.SELU: "selu", nn.Identity: "identity",
    nn.Softsign: "softsign", nn.LogSigmoid: "logsigmoid", nn.Tanhshrink: "tanhshrink",
}


def _arg(n_args: tuple, n_kwargs: dict, op: str, name: str, default: Any = None) -> Any:
    names = SIGS.get(op, ["input", "other"])
    if name in n_kwargs:
        return n_kwargs[name]
    i = names.index(name) if name in names else len(n_args)
    return n_args[i] if i < len(n_args) else default


class Normalizer:
    """Walks the fx graph in order; ``env`` maps fx nodes to Vals, tuples of Vals, or constants."""

    def __init__(self, gm: torch.fx.GraphModule, model: nn.Module) -> None:
        self.gm, self.model = gm, model
        self.params = dict(model.named_parameters()) | dict(model.named_buffers())
        self.env: dict[torch.fx.Node, Any] = {}
        self.inputs: list[str] = []
        self.cse: dict[tuple, Val] = {}

    # -- construction helpers -----------------------------------------------------------------
    def intern(self, v: Val) -> Val:
        """One Val per distinct computation (common subexpressions merged, e.g. exp(x - max) twice)."""
        args = tuple(("v", id(a)) if isinstance(a, Val) else ("c", type(a).__name__, repr(a)) for a in v.args)
        key = (v.op, args, repr(sorted(v.kw.items())), v.shape, v.dtype)
        return self.cse.setdefault(key, v)

    def pw(self, op: str, *args: Any, **kw: Any) -> Val:
        shapes = [a.shape for a in args if isinstance(a, Val)]
        if not shapes:
            raise Unsupported(f"{op} of Python scalars only")
        return self.intern(Val(op, tuple(args), broadcast(*shapes), F32, kw))

    def red(self, op: str, x: Val, dim: Any, keepdim: bool, **kw: Any) -> Val:
        x = self.tensor(x, op)
        d = norm_dims(dim, len(x.shape), op)
        dtype = torch.int64 if op in ("argmax", "argmin") else F32
        shape = reduced(x.shape, d, bool(keepdim)) if x.shape else ()
        return self.intern(Val(op, (x,), shape, dtype, {"dim": d, "keepdim": bool(keepdim), **kw}))

    def tensor(self, x: Any, what: str) -> Val:
        if not isinstance(x, Val):
            raise Unsupported(f"{what} of a non-tensor value {type(x).__name__}")
        return x

    def leaf(self, source: tuple, value: torch.Tensor) -> Val:
        if value.is_complex():
            raise Unsupported(f"a {value.dtype} tensor input (the templates compute real numbers only)")
        return self.intern(Val("leaf", (), tuple(value.shape), value.dtype, {"source": source, "views": ()}))

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> tuple[list[Val], bool, list[str]]:
        """Normalise the whole graph: (outputs, returns_tuple, forward argument names)."""
        for n in self.gm.graph.nodes:
            if n.op == "output":
                out = n.args[0]
                is_tuple = isinstance(out, (tuple, list))
                outs = [self.env[o] for o in (out if is_tuple else [out])]
                for o in outs:
                    self.tensor(o, "returning")
                return outs, is_tuple, self.inputs
            self.env[n] = self.node(n)
        raise Unsupported("the graph has no output")

    def node(self, n: torch.fx.Node) -> Any:
        value = n.meta.get("value")
        if n.op == "placeholder":
            self.inputs.append(n.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                source = ("input", len(self.inputs) - 1, n.name)  # a Python number: a scalar kernel argument
                return Val("leaf", (), (), F32, {"source": source, "views": (), "scalar": True})
            if not isinstance(value, torch.Tensor):
                raise Unsupported(f"forward argument {n.name} is a {type(value).__name__}, not a tensor")
            return self.leaf(("input", len(self.inputs) - 1, n.name), value)
        if n.op == "get_attr":
            if n.target not in self.params:
                raise Unsupported(f"attribute {n.target} is a tensor constant, not a parameter or buffer")
            return self.leaf(("param", n.target), self.params[n.target])
        if not isinstance(value, torch.Tensor) and not (
            isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value)
        ):
            return value  # shapes, sizes and arithmetic on them: constants of the traced shape
        args = torch.fx.node.map_arg(n.args, lambda a: self.env[a])
        kwargs = torch.fx.node.map_arg(n.kwargs, lambda a: self.env[a])
        if n.op == "call_module":
            return self.module(self.gm.get_submodule(n.target), n.target, args, kwargs)
        if n.op == "call_method":
            name = n.target
            if name.endswith("_") and not name.startswith("_"):
                name = name[:-1]  # in-place method: same value if nothing reads the input again
                later = [u for u in n.args[0].users if u is not n] if isinstance(n.args[0], torch.fx.Node) else []
                if later:
                    raise Unsupported(f"in-place {n.target} whose input is read again")
        elif n.target in OPERATOR_NAMES:
            name = OPERATOR_NAMES[n.target]
        elif isinstance(n.target, torch._ops.OpOverload):
            name = n.target._schema.name.split("::")[-1]
        else:
            name = getattr(n.target, "__name__", str(n.target))
        name = ALIASES.get(name, name)
        return self.call(name, args, kwargs, value)

    def module(self, mod: nn.Module, target: str, args: tuple, kwargs: dict) -> Any:
        p = lambda attr: self.leaf(("param", f"{target}.{attr}"), getattr(mod, attr))  # noqa: E731
        x = args[0] if args else kwargs.get("input")
        if type(mod) in MODULE_OPS:
            return self.call(MODULE_OPS[type(mod)], (x,), {}, None)
        if isinstance(mod, nn.Linear):
            return self.call("linear", (x, p("weight"), p("bias") if mod.bias is not None else None), {}, None)
        if isinstance(mod, nn.LayerNorm):
            w = p("weight") if mod.weight is not None else None
            b = p("bias") if getattr(mod, "bias", None) is not None else None
            return self.call("layer_norm", (x, mod.normalized_shape, w, b, mod.eps), {}, None)
        if isinstance(mod, nn.modules.instancenorm._InstanceNorm):
            if mod.track_running_stats and not mod.training:
                raise Unsupported(f"{type(mod).__name__} with running statistics in eval mode")
            w = p("weight") if mod.affine else None
            b = p("bias") if mod.affine else None
            return self.call("instance_norm_module", (x, w, b, mod.eps), {}, None)
        if isinstance(mod, getattr(nn, "RMSNorm", ())):
            w = p("weight") if mod.weight is not None else None
            return self.call("rms_norm", (x, mod.normalized_shape, w, mod.eps), {}, None)
        simple = {
            nn.Softmax: ("softmax", {"dim": getattr(mod, "dim", None)}),
            nn.LogSoftmax: ("log_softmax", {"dim": getattr(mod, "dim", None)}),
            nn.GELU: ("gelu", {"approximate": getattr(mod, "approximate", "none")}),
            nn.LeakyReLU: ("leaky_relu", {"negative_slope": getattr(mod, "negative_slope", 0.01)}),
            nn.ELU: ("elu", {"alpha": getattr(mod, "alpha", 1.0)}),
            nn.Softplus: ("softplus", {"beta": getattr(mod, "beta", 1.0), "threshold": getattr(mod, "threshold", 20.0)}),
            nn.Hardtanh: ("hardtanh", {"min_val": getattr(mod, "min_val", -1.0), "max_val": getattr(mod, "max_val", 1.0)}),
            nn.Dropout: ("dropout", {"p": getattr(mod, "p", 0.5), "training": True}),
            nn.Softmin: ("softmin", {"dim": getattr(mod, "dim", None)}),
            nn.CELU: ("celu", {"alpha": getattr(mod, "alpha", 1.0)}),
            nn.Hardshrink: ("hardshrink", {"lambd": getattr(mod, "lambd", 0.5)}),
            nn.Softshrink: ("softshrink", {"lambd": getattr(mod, "lambd", 0.5)}),
            nn.Threshold: ("threshold", {"threshold": getattr(mod, "threshold", 0.0), "value": getattr(mod, "value", 0.0)}),
            nn.TripletMarginLoss: ("triplet_margin_loss", {
                "margin": getattr(mod, "margin", 1.0), "p": getattr(mod, "p", 2.0), "eps": getattr(mod, "eps", 1e-6),
                "swap": getattr(mod, "swap", False), "reduction": getattr(mod, "reduction", "mean")}),
            nn.CosineSimilarity: ("cosine_similarity", {"dim": getattr(mod, "dim", 1), "eps": getattr(mod, "eps", 1e-8)}),
        }
        for cls, (op, kw) in simple.items():
            if type(mod) is cls or (cls is nn.Hardtanh and isinstance(mod, nn.Hardtanh)):
                return self.call(op, (x, *args[1:]), kw, None)
        raise Unsupported(f"no template covers the module {type(mod).__name__} ({target})")

    def call(self, name: str, args: tuple, kw: dict, value: Any) -> Any:
        from .decompose import call_op

        return call_op(self, name, args, kw, value)


def normalize(gm: torch.fx.GraphModule, model: nn.Module) -> tuple[list[Val], bool, list[str]]:
    """(outputs, returns_tuple, forward argument names) of the graph in the op vocabulary, or Unsupported."""
    return Normalizer(gm, model).run()


__all__ = ["normalize", "Normalizer", "POINTWISE", "REDUCTIONS", "SCANS", "SHAPE_OPS", "_arg"]
