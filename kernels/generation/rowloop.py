"""The row template's looped form, for rows longer than one tile (``MAX_TILE``).

The same graph as ``rowgen`` but each program walks its rows in BLOCK_N chunks: one pass per level of
reductions (a reduction whose input needs another reduction waits for the pass after it), accumulating
sums, extrema (with first-index argmax/argmin), products and variances (Welford merge, stable), then a final
pass that recomputes the pointwise graph chunk by chunk and stores the full-size outputs. Scans carry their
running total from chunk to chunk within a pass.
"""

from __future__ import annotations

from .exprs import lit, pointwise
from .ir import REDUCTIONS, SCANS, Unsupported, Val
from .rowgen import RowSpec, kernel_params, load_expr, row_offsets

INIT = {"sum": "0.0", "mean": "0.0", "amax": 'float("-inf")', "argmax": 'float("-inf")', "amin": 'float("inf")',
        "argmin": 'float("inf")', "prod": "1.0", "var": "0.0"}


def _levels(spec: RowSpec) -> dict[int, int]:
    level: dict[int, int] = {}
    for v in spec.nodes:
        deps = [level.get(id(a), 0) for a in v.vals()]
        base = max(deps, default=0)
        level[id(v)] = base + 1 if v.op in REDUCTIONS else base
    return level


class _Emitter:
    """Emits the nodes a target needs inside (full-width leaves allowed) or outside a chunk loop."""

    def __init__(self, spec: RowSpec, outer: list[int]) -> None:
        self.spec, self.outer = spec, outer
        self.final: dict[int, str] = {}  # reductions finished in an earlier pass
        self.load_index = {(id(leaf), sp): k for k, (leaf, sp) in enumerate(spec.loads)}

    def emit(self, targets: list[Val], in_loop: bool, indent: str, tag: str) -> tuple[list[str], dict, list[str]]:
        """(lines, names, carry inits) computing ``targets``; reductions must already be final."""
        names: dict[object, str] = {}
        lines: list[str] = []
        inits: list[str] = []
        for i, v in enumerate(self.spec.nodes):
            if id(v) not in self._needed(targets):
                continue
            if v.op in REDUCTIONS:
                if id(v) not in self.final:
                    raise Unsupported(f"{v.op} needed before its pass (looped row template)")
                names[id(v)] = self.final[id(v)]
                continue
            if v.is_leaf:
                continue
            sp = "shape_i" if v.op in SCANS else self.spec.space[id(v)]
            args = [self._ref(a, sp, names, lines, in_loop, indent) for a in v.args]
            name = names[id(v)] = f"{tag}{i}"
            if v.op in SCANS:
                if not in_loop:
                    raise Unsupported("a scan outside a chunk loop")
                one = v.op == "cumprod"
                fill = "1.0" if one else "0.0"
                inits.append(f"c{tag}{i} = tl.full([BLOCK_M, 1], {fill}, tl.float32)")
                xs = f"tl.where(mask, {args[0]}, {fill})"
                if one:
                    lines.append(f"{indent}{name} = tl.cumprod({xs}, axis=1) * c{tag}{i}")
                    lines.append(f"{indent}c{tag}{i} = c{tag}{i} * tl.reduce({xs}, 1, _mul_combine)[:, None]")
                else:
                    lines.append(f"{indent}{name} = tl.cumsum({xs}, axis=1) + c{tag}{i}")
                    lines.append(f"{indent}c{tag}{i} = c{tag}{i} + tl.sum({xs}, axis=1)[:, None]")
            else:
                lines.append(f"{indent}{name} = {pointwise(v, args)}")
        for t in targets:
            if t.is_leaf:
                self._ref(t, "shape_i", names, lines, in_loop, indent)
        return lines, names, inits

    def _needed(self, targets: list[Val]) -> set[int]:
        need: set[int] = set()
        stack = list(targets)
        while stack:
            v = stack.pop()
            if id(v) in need:
                continue
            need.add(id(v))
            if v.op in REDUCTIONS and id(v) in self.final:
                continue
            stack += v.vals()
        return need

    def _ref(self, a: object, sp: str, names: dict, lines: list[str], in_loop: bool, indent: str) -> str:
        if not isinstance(a, Val):
            return lit(a)
        if not a.is_leaf:
            return names[id(a)]
        key = (id(a), sp)
        if key not in names:
            k = self.load_index[key]
            if self.spec.width[key] == "full" and not in_loop:  # type: ignore[index]
                raise Unsupported("a full-width input outside a chunk loop")
            lines.append(f"{indent}x{k} = {load_expr(self.spec, self.outer, k)}")
            names[key] = f"x{k}"
        return names[key]


def loop_kernel_source(spec: RowSpec) -> str:
    """The @triton.jit looped kernel ``_row_loop_kernel`` (same parameters as ``_row_kernel``)."""
    params, outer = kernel_params(spec)
    L = [
        "@triton.jit",
        f"def _row_loop_kernel({', '.join(params)}, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):",
        "    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)",
        "    mask_m = (rm < M)[:, None]",
        "    rem = rm.to(tl.int64)",
    ]
    for d in reversed(outer):
        L += [f"    i{d} = rem % S{d}", f"    rem = rem // S{d}"]
    em = _Emitter(spec, outer)
    level = _levels(spec)
    reds = [v for v in spec.nodes if v.op in REDUCTIONS]
    loop_head = [
        "    for start in range(0, N, BLOCK_N):",
        "        rn = start + tl.arange(0, BLOCK_N)",
        "        mask = mask_m & (rn < N)[None, :]",
        "        cols = rn.to(tl.int64)[None, :]",
    ]
    for lv in range(1, max((level[id(v)] for v in reds), default=0) + 1):
        group = [v for v in reds if level[id(v)] == lv]
        body, names, inits = em.emit([v.args[0] for v in group], True, "        ", f"p{lv}_")
        acc_init, acc_body, finish = [], [], []
        for v in group:
            i = spec.nodes.index(v)
            a, x = f"a{i}", names[id(v.args[0])] if not v.args[0].is_leaf else names[(id(v.args[0]), "shape_i")]
            acc_init.append(f"    {a} = tl.full([BLOCK_M, 1], {INIT[v.op]}, tl.float32)")
            acc_body += [f"        {line}" for line in _accumulate(v, a, x)]
            if v.op in ("argmax", "argmin"):
                acc_init.append(f"    {a}_i = tl.zeros([BLOCK_M, 1], dtype=tl.int32)")
            if v.op == "var":
                acc_init += [f"    {a}_n = tl.zeros([BLOCK_M, 1], dtype=tl.float32)", f"    {a}_m = tl.zeros([BLOCK_M, 1], dtype=tl.float32)"]
            finish.append(f"    r{i} = " + {
                "mean": f"{a} / N", "argmax": f"{a}_i", "argmin": f"{a}_i", "var": f"{a} / (N - {v.kw.get('correction', 1)})",
            }.get(v.op, a))
            em.final[id(v)] = f"r{i}"
        L += acc_init + [f"    {line}" for line in inits] + loop_head + body + acc_body + finish
    full = [o for o, kind in spec.stores if kind == "full"]
    if full:
        body, names, inits = em.emit(full, True, "        ", "f_")
        L += [f"    {line}" for line in inits] + loop_head + body
        for j, (o, kind) in enumerate(spec.stores):
            if kind == "full":
                val = names[(id(o), "shape_i")] if o.is_leaf else names[id(o)]
                val = f"({val} + tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32))"
                off = row_offsets(outer, f"out{j}") + f" + cols * out{j}_sr"
                L.append(f"        tl.store(out{j} + {off}, {val}.to(out{j}.dtype.element_ty), mask=mask)")
    rows = [(j, o, kind) for j, (o, kind) in enumerate(spec.stores) if kind != "full"]
    if rows:
        body, names, _ = em.emit([o for _, o, _ in rows], False, "    ", "o_")
        L += body
        for j, o, kind in rows:
            sp = "O" if kind == "O" else "shape_i"
            val = names[(id(o), sp)] if o.is_leaf else names[id(o)]
            L.append(f"    tl.store(out{j} + {row_offsets(outer, f'out{j}')}, ({val}).to(out{j}.dtype.element_ty), mask=mask_m)")
    return "\n".join(L) + "\n"


def _accumulate(v: Val, a: str, x: str) -> list[str]:
    if v.op in ("sum", "mean"):
        return [f"{a} += tl.sum(tl.where(mask, {x}, 0.0), axis=1)[:, None]"]
    if v.op in ("amax", "amin"):
        fn, cmp = ("tl.max", "tl.maximum") if v.op == "amax" else ("tl.min", "tl.minimum")
        return [f"{a} = {cmp}({a}, {fn}(tl.where(mask, {x}, {INIT[v.op]}), axis=1)[:, None])"]
    if v.op in ("argmax", "argmin"):
        fn, better = ("max", ">") if v.op == "argmax" else ("min", "<")
        return [
            f"{a}_c = tl.where(mask, {x}, {INIT[v.op]})",
            f"{a}_v = tl.{fn}({a}_c, axis=1)[:, None]",
            f"{a}_j = tl.arg{fn}({a}_c, axis=1)[:, None] + start",
            f"{a}_i = tl.where({a}_v {better} {a}, {a}_j, {a}_i)",
            f"{a} = tl.where({a}_v {better} {a}, {a}_v, {a})",
        ]
    if v.op == "prod":
        return [f"{a} = {a} * tl.reduce(tl.where(mask, {x}, 1.0), 1, _mul_combine)[:, None]"]
    if v.op == "var":  # Welford: merge this chunk's (count, mean, M2) into the running ones
        return [
            f"{a}_cn = tl.sum(mask.to(tl.float32), axis=1)[:, None]",
            f"{a}_cm = tl.sum(tl.where(mask, {x}, 0.0), axis=1)[:, None] / tl.maximum({a}_cn, 1.0)",
            f"{a}_d = tl.where(mask, {x} - {a}_cm, 0.0)",
            f"{a}_tn = {a}_n + {a}_cn",
            f"{a}_delta = {a}_cm - {a}_m",
            f"{a}_m = {a}_m + {a}_delta * {a}_cn / tl.maximum({a}_tn, 1.0)",
            f"{a} = {a} + tl.sum({a}_d * {a}_d, axis=1)[:, None] + {a}_delta * {a}_delta * {a}_n * {a}_cn / tl.maximum({a}_tn, 1.0)",
            f"{a}_n = {a}_tn",
        ]
    raise Unsupported(f"no looped accumulation for {v.op}")
