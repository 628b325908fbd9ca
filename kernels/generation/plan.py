"""``plan_kernel``: from a KernelBench-format problem to a template plan (or a one-line NeedsLLM).

The plan holds the normalised graph, the chosen template (row or matmul), the template's search space of
meta parameters and ``render(config)``, which writes a standalone ``model_new.py`` importing only torch,
triton and the standard library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from tunesmith.runners.space import Param, SearchSpace

from . import matmulgen, rowgen, rowloop, twostage
from .exprs import HELPERS
from .ir import POINTWISE, REDUCTIONS, SCANS, Unsupported, Val, op_names, topo
from .loading import ProblemError, trace
from .modelsrc import model_new_source
from .normalize import normalize

LLM_HINT = "an LLM is needed (tune kernel --llm ...)"
HEADER = ["import math", "import operator", "", "import torch", "import torch.nn as nn",
          "import torch.nn.functional as F", "import triton", "import triton.language as tl"]


class NeedsLLM(BaseModel):
    """The reference holds a pattern no template covers; ``reason`` is one line naming it."""

    reason: str


def _meta(name: str, kind: str, default: Any, help: str, **kw: Any) -> Param:
    return Param(name=name, kind=kind, default=default, apply="meta", help=help, **kw)


COMMON = (
    _meta("num_warps", "choice", 4, "warps per program", values=(1, 2, 4, 8, 16)),
    _meta("num_stages", "choice", 1, "software pipelining stages", values=(1, 2, 3, 4)),
)
SPACES = {
    "reduce": SearchSpace(params=(
        _meta("ROWS", "pow2", 1, "rows per program (capped so ROWS * row length <= MAX_TILE)", low=1, high=64),
        _meta("MAX_TILE", "pow2", 16384, "largest tile (elements) one program holds; longer rows loop",
              low=16, high=65536),
        _meta("CHUNK", "pow2", 2048, "chunk of a row per loop step when a row is longer than MAX_TILE",
              low=16, high=16384),
        *COMMON,
    ), constraints=("CHUNK <= MAX_TILE",)),
    "elementwise": SearchSpace(params=(
        _meta("BLOCK_SIZE", "pow2", 1024, "elements per program", low=64, high=16384), *COMMON,
    )),
    "matmul": SearchSpace(
        params=(
            _meta("BLOCK_M", "choice", 64, "output tile rows", values=(16, 32, 64, 128, 256)),
            _meta("BLOCK_N", "choice", 64, "output tile columns", values=(16, 32, 64, 128, 256)),
            _meta("BLOCK_K", "choice", 32, "reduction tile", values=(16, 32, 64, 128)),
            _meta("GROUP_M", "choice", 8, "row tiles grouped for L2 reuse", values=(1, 4, 8, 16)),
            _meta("num_warps", "choice", 4, "warps per program", values=(2, 4, 8)),
            _meta("num_stages", "choice", 3, "software pipelining stages", values=(1, 2, 3, 4, 5)),
        ),
        constraints=("(BLOCK_M * BLOCK_K + BLOCK_K * BLOCK_N) * 4 * num_stages <= 196608",),
    ),
}
SPACES["matmul_rows"] = SearchSpace(  # a GEMM pass, then a row pass: both templates' tile sizes
    params=SPACES["matmul"].params + tuple(p for p in SPACES["reduce"].params if p.name in ("ROWS", "MAX_TILE", "CHUNK")),
    constraints=SPACES["matmul"].constraints + SPACES["reduce"].constraints,
)


class KernelPlan:
    """A problem matched to a template: its pattern, signature, search space and renderer."""

    def __init__(self, path: Path, outs: list[Val], returns_tuple: bool, arg_names: list[str],
                 out_dtypes: list[torch.dtype], inputs: list[torch.Tensor]) -> None:
        self.path, self.outs, self.returns_tuple, self.arg_names = Path(path), outs, returns_tuple, arg_names
        self.out_dtypes = out_dtypes
        nodes = topo(outs)
        self.leaves = [v for v in nodes if v.is_leaf]
        for i, leaf in enumerate(self.leaves):
            leaf.kw["_index"] = i
        if any(v.op == "matmul" for v in nodes):
            try:
                self.template, self.spec = "matmul", matmulgen.analyse(outs)
            except Unsupported as exc:  # a GEMM feeding a row reduction (softmax, sum): two passes
                try:
                    self.template, self.spec = "matmul_rows", twostage.split_matmul(outs, len(self.leaves))
                except Unsupported:
                    raise exc from None
        else:
            try:
                self.spec = rowgen.analyse(outs)
            except Unsupported as exc:  # a reduction of reduced values: two passes, or the first reason
                try:
                    self.spec = twostage.split(outs, len(self.leaves))
                except Unsupported:
                    raise exc from None
            self.template = "reduce" if self.spec.reduces else "elementwise"
        self.pattern = describe(self.template, nodes, self.spec)
        self.signature = {
            "ops": op_names(outs),
            "shapes": [list(t.shape) if isinstance(t, torch.Tensor) else [] for t in inputs],
            "dtypes": [str(t.dtype).removeprefix("torch.") if isinstance(t, torch.Tensor) else type(t).__name__
                       for t in inputs],
        }
        model_new_source(self.path, arg_names, "pass")  # refuse early if the constructor cannot be copied

    def space(self) -> SearchSpace:
        """The template's meta parameters (``apply="meta"``); the defaults are a safe config."""
        return SPACES[self.template]

    def default_config(self) -> dict:
        """The space's defaults."""
        return self.space().defaults()

    def render(self, config: dict) -> str:
        """The full source of model_new.py for ``config`` (completed with defaults and checked)."""
        cfg = self.space().validate_config(dict(config), where="kernel config")
        dtypes = [str(d) for d in self.out_dtypes]
        if self.template == "matmul_rows":
            kernel, launch = "", twostage.matmul_rows_source(self.spec, dtypes, cfg, self.returns_tuple)
        elif self.template == "matmul":
            kernel = matmulgen.kernel_source(self.spec)
            launch = matmulgen.launcher_source(self.spec, len(self.leaves), dtypes[0], cfg)
        elif isinstance(self.spec, twostage.TwoStage):
            kernel = twostage.kernel_source(self.spec)
            launch = twostage.launcher_source(self.spec, dtypes, cfg, self.returns_tuple)
        else:
            kernel = rowgen.kernel_source(self.spec)
            if self.template == "reduce":
                kernel += "\n\n" + rowloop.loop_kernel_source(self.spec)
            launch = rowgen.launcher_source(self.spec, len(self.leaves), dtypes, cfg, self.returns_tuple)
        args = ", ".join(_leaf_expr(v) for v in self.leaves)
        call = f"(_launch({args}),)" if self.template == "matmul" and self.returns_tuple else f"_launch({args})"
        imports, model = model_new_source(self.path, self.arg_names, f"return {call}")
        header = HEADER + [line for line in imports if line not in HEADER]
        doc = f'"""Generated by tunesmith\'s template coder ({self.template} template): {self.pattern}.\n\n' \
              f'Config: {cfg}\n"""\n\n'
        return doc + "\n".join(header) + "\n\n" + HELPERS + "\n\n" + kernel + "\n\n" + launch + "\n\n" + model


def _leaf_expr(v: Val) -> str:
    src = v.kw["source"]
    expr = src[2] if src[0] == "input" else f"operator.attrgetter({src[1]!r})(self)"
    for name, args, kw in v.kw["views"]:
        if name in ("T", "mT"):
            expr += f".{name}"
        else:
            parts = [repr(a) for a in args] + [f"{k}={val!r}" for k, val in kw.items()]
            expr += f".{name}({', '.join(parts)})"
    return expr


def describe(template: str, nodes: list[Val], spec: Any) -> str:
    """Human words for what the graph computes (read from the normalised ops, not from call names)."""
    ops = [v.op for v in nodes if not v.is_leaf]
    pointwise = sum(1 for o in ops if o not in REDUCTIONS and o not in SCANS and o != "matmul")
    if template == "matmul":
        a, b = spec.mm.args
        kind = "matrix-vector product" if len(b.shape) == 1 else "batched matmul" if len(b.shape) > 2 else "matmul"
        extra = []
        if spec.pro["A"] or spec.pro["B"]:
            extra.append(f"{len(spec.pro['A']) + len(spec.pro['B'])} pointwise prologue ops")
        if spec.epi:
            extra.append("epilogue " + ", ".join(dict.fromkeys(v.op for v in spec.epi)))
        return kind + (" with " + " and ".join(extra) + ", fused" if extra else "")
    if template == "elementwise":
        return f"elementwise chain of {pointwise} ops ({', '.join(dict.fromkeys(ops))}), fused"
    if template == "matmul_rows":
        return (f"two passes: {describe('matmul', topo([spec.cut]), spec.first)}; then "
                f"{describe('reduce', topo([v for v, _ in spec.second.stores]), spec.second)}")
    if hasattr(spec, "cut"):
        return (f"two passes: {describe(template, topo(spec.cut), spec.first)}; then "
                f"{describe(template, topo([v for v, _ in spec.second.stores]), spec.second)}")
    s = set(ops)
    if "var" in s and "mean" in s and "rsqrt" in s:
        core = "layer norm"
    elif "mean" in s and "rsqrt" in s:
        core = "RMS norm"
    elif {"amax", "exp", "sum"} <= s:
        core = "softmax" if "div" in s else "log-softmax / log-sum-exp"
    elif s & SCANS:
        core = "scan (" + ", ".join(sorted(s & SCANS)) + ")"
    else:
        core = "row reduction (" + ", ".join(sorted(s & REDUCTIONS)) + ")"
    dims = "every dim" if len(spec.dims) == len(spec.shape_i) else (
        f"dim{'s' if len(spec.dims) > 1 else ''} {', '.join(map(str, spec.dims))}")
    dim = f"over {dims} of a rank-{len(spec.shape_i)} tensor"
    return f"{core} {dim}, {pointwise} pointwise ops fused"


def plan_kernel(problem: Path, *, small: bool = False) -> KernelPlan | NeedsLLM:
    """Match ``problem`` to a template; NeedsLLM(reason) with one line for a pattern no template covers.

    A problem file that is missing or broken raises ``ProblemError`` (a bad input, not an LLM's job).
    """
    try:
        traced = trace(Path(problem), small=small)
        outs, returns_tuple, arg_names = normalize(traced.graph_module, traced.model)
        if traced.returns_tuple is not None:
            returns_tuple = traced.returns_tuple
        out_node = [n for n in traced.graph_module.graph.nodes if n.op == "output"][0]
        raw = out_node.args[0]
        values = [n.meta["value"] for n in (raw if isinstance(raw, (tuple, list)) else [raw])]
        for out, value in zip(outs, values, strict=True):
            if not value.dtype.is_floating_point and out.op not in ("argmax", "argmin"):
                raise Unsupported(f"a {str(value.dtype).removeprefix('torch.')} output (templates write floats and indices)")
        for v in topo(outs):
            if v.op == "flip":
                raise Unsupported("flip (covered only around a cumsum along the same dim: a reverse cumsum)")
            if not (v.is_leaf or v.op in POINTWISE or v.op in REDUCTIONS or v.op in SCANS or v.op == "matmul"):
                raise Unsupported(f"the op {v.op}")
        return KernelPlan(Path(problem), outs, returns_tuple, arg_names, [v.dtype for v in values], traced.inputs)
    except Unsupported as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "an unknown pattern"
        return NeedsLLM(reason=f"no template covers {reason.removeprefix('no template covers ')}: {LLM_HINT}")


__all__ = ["KernelPlan", "NeedsLLM", "ProblemError", "plan_kernel"]
