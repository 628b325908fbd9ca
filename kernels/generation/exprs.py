"""Triton expressions for the pointwise ops of the vocabulary (computed in fp32).

``HELPERS`` are small ``@triton.jit`` functions copied into every generated file; ``pointwise(val,
args)`` returns one Triton expression for a pointwise Val whose arguments are already expressions.
Only ``tl`` builtins are used (no libdevice), so the same source runs on a GPU and under the interpreter.
"""

from __future__ import annotations

import math
from typing import Any

from .ir import Unsupported, Val

HELPERS = '''
@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _tanh(x):
    return 1.0 - 2.0 / (tl.exp(2.0 * x) + 1.0)


@triton.jit
def _mul_combine(a, b):
    return a * b


@triton.jit
def _softplus(x, beta, threshold):
    return tl.where(x * beta > threshold, x, tl.log(1.0 + tl.exp(x * beta)) / beta)
'''


def lit(v: Any) -> str:
    """A Python scalar as Triton source."""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return f"{v}.0" if abs(v) < 2**24 else repr(float(v))
    if isinstance(v, float):
        if math.isnan(v):
            return 'float("nan")'
        if math.isinf(v):
            return 'float("inf")' if v > 0 else 'float("-inf")'
        return repr(v)
    raise Unsupported(f"a constant of type {type(v).__name__}")


def _pow(x: str, e: Any, base_scalar: Any = None) -> str:
    if base_scalar is not None:
        if base_scalar <= 0:
            raise Unsupported("pow with a non-positive scalar base")
        return f"tl.exp2({e} * {math.log2(base_scalar)!r})"
    if isinstance(e, (int, float)) and not isinstance(e, bool):
        if e == int(e) and 0 <= e <= 4:
            return "(" + " * ".join([x] * int(e)) + ")" if e else f"({x} * 0.0 + 1.0)"
        if e == int(e) and -4 <= e < 0:
            return "(1.0 / (" + " * ".join([x] * int(-e)) + "))"
        if e == 0.5:
            return f"tl.sqrt({x})"
        if e == -0.5:
            return f"tl.rsqrt({x})"
        return f"tl.exp2({lit(float(e))} * tl.log2({x}))"
    return f"tl.exp2({e} * tl.log2({x}))"


UNARY = {
    "neg": "(-{0})", "relu": "tl.maximum({0}, 0.0)", "silu": "({0} * _sigmoid({0}))", "sigmoid": "_sigmoid({0})",
    "tanh": "_tanh({0})", "exp": "tl.exp({0})", "log": "tl.log({0})", "log1p": "tl.log(1.0 + {0})",
    "expm1": "(tl.exp({0}) - 1.0)", "sqrt": "tl.sqrt({0})", "rsqrt": "tl.rsqrt({0})", "abs": "tl.abs({0})",
    "erf": "tl.erf({0})", "sin": "tl.sin({0})", "cos": "tl.cos({0})", "exp2": "tl.exp2({0})",
    "log2": "tl.log2({0})", "floor": "tl.floor({0})", "ceil": "tl.ceil({0})", "reciprocal": "(1.0 / {0})",
    "hardswish": "({0} * tl.minimum(tl.maximum({0} + 3.0, 0.0), 6.0) / 6.0)",
    "hardsigmoid": "(tl.minimum(tl.maximum({0} + 3.0, 0.0), 6.0) / 6.0)",
    "mish": "({0} * _tanh(_softplus({0}, 1.0, 20.0)))",
    "sign": "tl.where({0} > 0.0, 1.0, tl.where({0} < 0.0, -1.0, 0.0))",
    "selu": "(1.0507009873554805 * tl.where({0} > 0.0, {0}, 1.6732632423543772 * (tl.exp({0}) - 1.0)))",
}
COMPARISONS = frozenset({"gt", "lt", "ge", "le", "eq", "ne"})
BINARY = {
    "add": "({0} + {1})", "sub": "({0} - {1})", "mul": "({0} * {1})", "div": "({0} / {1})",
    "gt": "({0} > {1})", "lt": "({0} < {1})", "ge": "({0} >= {1})", "le": "({0} <= {1})",
    "eq": "({0} == {1})", "ne": "({0} != {1})", "maximum": "tl.maximum({0}, {1})", "minimum": "tl.minimum({0}, {1})",
}


def pointwise(v: Val, args: list[str]) -> str:
    """One Triton expression computing pointwise Val ``v`` from its argument expressions ``args``."""
    op, kw = v.op, v.kw
    if op in UNARY:
        return UNARY[op].format(*args)
    if op in BINARY:
        return BINARY[op].format(*args)
    if op == "pow":
        base, e = v.args
        if not isinstance(base, Val):
            return _pow(args[0], args[1], base_scalar=base)
        return _pow(args[0], e if not isinstance(e, Val) else args[1])
    if op == "gelu":
        x = args[0]
        if kw.get("approximate", "none") == "tanh":
            return f"(0.5 * {x} * (1.0 + _tanh(0.7978845608028654 * ({x} + 0.044715 * {x} * {x} * {x}))))"
        return f"(0.5 * {x} * (1.0 + tl.erf({x} * 0.7071067811865476)))"
    if op == "clamp":
        out = args[0]
        if kw.get("lo") is not None:
            out = f"tl.maximum({out}, {lit(kw['lo'])})"
        if kw.get("hi") is not None:
            out = f"tl.minimum({out}, {lit(kw['hi'])})"
        return out
    if op == "where":
        cond = v.args[0]
        c = f"({args[0]} != 0.0)" if isinstance(cond, Val) and cond.op not in COMPARISONS else args[0]
        return f"tl.where({c}, {args[1]}, {args[2]})"
    if op == "leaky_relu":
        return f"tl.where({args[0]} > 0.0, {args[0]}, {args[0]} * {lit(kw['slope'])})"
    if op == "elu":
        return f"tl.where({args[0]} > 0.0, {args[0]}, {lit(kw['alpha'])} * (tl.exp({args[0]}) - 1.0))"
    if op == "softplus":
        return f"_softplus({args[0]}, {lit(kw['beta'])}, {lit(kw['threshold'])})"
    raise Unsupported(f"no Triton expression for {op}")
