"""Two passes of the row template: a reduction of values that an earlier reduction produced.

A loss such as ``mean(1 - cosine_similarity(a, b, dim=1))`` or a triplet margin loss reduces each row
first and then reduces the per-row results. One row kernel cannot do both (its programs own disjoint
rows), so the graph is cut: pass one computes every value that needs only the first group of reductions
(same input shape, same dims) and stores the ones that pass two reads; pass two reads them as inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import rowgen, rowloop
from .ir import REDUCTIONS, SCANS, Unsupported, Val, topo


@dataclass
class TwoStage:
    """The cut graph: pass one's spec and stored values, pass two's spec (its extra leaves follow the inputs)."""

    first: rowgen.RowSpec
    cut: list[Val]
    second: rowgen.RowSpec
    leaf_count: int

    @property
    def reduces(self) -> bool:
        return True


def split(outs: list[Val], leaf_count: int) -> TwoStage:
    """Cut ``outs`` after the first group of reductions; Unsupported when the parts do not fit the template."""
    nodes = topo(outs)
    reds = [v for v in nodes if v.op in REDUCTIONS or v.op in SCANS]
    if not reds:
        raise Unsupported("no reduction to split at")
    key = (reds[0].args[0].shape, reds[0].kw["dim"])
    later: set[int] = set()  # Vals that need a reduction outside the first group, or a value that does
    for v in nodes:
        if v.is_leaf:
            continue
        outside = (v.op in REDUCTIONS or v.op in SCANS) and (v.args[0].shape, v.kw["dim"]) != key
        if outside or any(id(a) in later for a in v.vals()):
            later.add(id(v))
    if not all(id(o) in later for o in outs):
        raise Unsupported("an output computed before the second pass")
    cut: list[Val] = []
    for v in nodes:
        if id(v) in later:
            cut += [a for a in v.vals() if id(a) not in later and not a.is_leaf and a not in cut]
    if not cut:
        raise Unsupported("nothing to hand from the first pass to the second")
    first = rowgen.analyse(cut)
    memo: dict[int, Val] = {}
    for j, c in enumerate(cut):
        memo[id(c)] = Val("leaf", (), c.shape, c.dtype,
                          {"source": ("pass1", j), "views": (), "_index": leaf_count + j})

    def copy(v: Val) -> Val:
        if id(v) not in memo:
            if v.is_leaf:
                memo[id(v)] = v
            else:
                args = tuple(copy(a) if isinstance(a, Val) else a for a in v.args)
                memo[id(v)] = Val(v.op, args, v.shape, v.dtype, dict(v.kw))
        return memo[id(v)]

    second = rowgen.analyse([copy(o) for o in outs])
    if not second.reduces:
        raise Unsupported("a second pass without a reduction")
    return TwoStage(first, cut, second, leaf_count)


def _rename(source: str, suffix: str) -> str:
    for name in ("_row_loop_kernel", "_row_kernel", "_launch"):
        source = source.replace(f"{name}(", f"{name}{suffix}(").replace(f"{name}[", f"{name}{suffix}[")
    return source


def kernel_source(ts: TwoStage) -> str:
    """Both passes' kernels (row and looped), renamed ``*_p1`` and ``*_p2``."""
    parts = []
    for spec, suffix in ((ts.first, "_p1"), (ts.second, "_p2")):
        parts.append(_rename(rowgen.kernel_source(spec) + "\n\n" + rowloop.loop_kernel_source(spec), suffix))
    return "\n\n".join(parts)


def launcher_source(ts: TwoStage, out_dtypes: list[str], config: dict, returns_tuple: bool) -> str:
    """``_launch(*leaves)``: pass one stores its values, pass two reads them after the inputs."""
    cut_dtypes = [str(c.dtype) for c in ts.cut]
    one = _rename(rowgen.launcher_source(ts.first, ts.leaf_count, cut_dtypes, config, True), "_p1")
    two = _rename(rowgen.launcher_source(ts.second, ts.leaf_count + len(ts.cut), out_dtypes, config,
                                         returns_tuple), "_p2")
    args = ", ".join(f"a{i}" for i in range(ts.leaf_count))
    glue = [f"def _launch({args}):", f"    _pass1 = _launch_p1({args})", f"    return _launch_p2({args}, *_pass1)"]
    return one + "\n\n" + two + "\n\n" + "\n".join(glue) + "\n"


@dataclass
class MatmulThenRows:
    """A GEMM with its pointwise epilogue (pass one, the matmul template) feeding row reductions (pass two)."""

    first: object  # matmulgen.MatmulSpec
    cut: Val
    second: rowgen.RowSpec
    leaf_count: int

    @property
    def reduces(self) -> bool:
        return True


def split_matmul(outs: list[Val], leaf_count: int) -> MatmulThenRows:
    """Cut after the GEMM's pointwise epilogue, where the first reduction or scan reads it."""
    from . import matmulgen

    nodes = topo(outs)
    later: set[int] = set()
    for v in nodes:
        if not v.is_leaf and (v.op in REDUCTIONS or v.op in SCANS or any(id(a) in later for a in v.vals())):
            later.add(id(v))
    cut = list(dict.fromkeys(a for v in nodes if id(v) in later for a in v.vals()
                             if id(a) not in later and not a.is_leaf))
    if len(cut) != 1 or not all(id(o) in later for o in outs):
        raise Unsupported("a GEMM whose result reaches a reduction by several paths")
    if any(v.op == "matmul" for v in nodes if id(v) in later):
        raise Unsupported("a matmul after a reduction")
    first = matmulgen.analyse(cut)
    memo: dict[int, Val] = {id(cut[0]): Val("leaf", (), cut[0].shape, cut[0].dtype,
                                            {"source": ("pass1", 0), "views": (), "_index": leaf_count})}

    def copy(v: Val) -> Val:
        if id(v) not in memo:
            memo[id(v)] = v if v.is_leaf else Val(
                v.op, tuple(copy(a) if isinstance(a, Val) else a for a in v.args), v.shape, v.dtype, dict(v.kw))
        return memo[id(v)]

    second = rowgen.analyse([copy(o) for o in outs])
    if not second.reduces:
        raise Unsupported("a matmul without a reduction after it")
    return MatmulThenRows(first, cut[0], second, leaf_count)


def matmul_rows_source(ts: MatmulThenRows, out_dtypes: list[str], config: dict, returns_tuple: bool) -> str:
    """Kernels and launchers of both passes, renamed, and ``_launch`` that chains them."""
    from . import matmulgen

    one = matmulgen.kernel_source(ts.first) + "\n\n" + matmulgen.launcher_source(
        ts.first, ts.leaf_count, str(ts.cut.dtype), config)
    one = one.replace("_launch(", "_launch_p1(")
    two = _rename(rowgen.kernel_source(ts.second) + "\n\n" + rowloop.loop_kernel_source(ts.second) + "\n\n"
                  + rowgen.launcher_source(ts.second, ts.leaf_count + 1, out_dtypes, config, returns_tuple), "_p2")
    args = ", ".join(f"a{i}" for i in range(ts.leaf_count))
    glue = f"def _launch({args}):\n    return _launch_p2({args}, _launch_p1({args}))\n"
    return one + "\n\n" + two + "\n\n" + glue
