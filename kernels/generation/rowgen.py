"""The row template: pointwise ops, row reductions, softmax/norm-shaped graphs and scans in ONE kernel.

The iteration space ``shape_i`` is the shape every reduction reads; ``r`` is the reduced dim (the last dim for a
pure elementwise graph). Rows are all the other dims (any rank, any order): each program handles BLOCK_M
rows and a BLOCK_N slice of ``r`` (the whole of ``r`` when the graph reduces or scans), so reductions over
a non-last dim, broadcast operands and non-contiguous views all become strides in the wrapper.
Each value is either ``full`` ([BLOCK_M, BLOCK_N]) or ``row`` ([BLOCK_M, 1]: reduced, or constant along r).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .exprs import lit, pointwise
from .ir import REDUCTIONS, SCANS, Unsupported, Val, broadcast, reduced, topo


@dataclass
class RowSpec:
    """What the row template needs: shape_i, r, each value's space/width, the loads and the stores."""

    shape_i: tuple[int, ...]
    r: int
    reduces: bool
    nodes: list[Val]
    dims: tuple[int, ...] = ()  # the reduced dims (adjacent); the kernel sees them merged into dim r
    space: dict[int, str] = field(default_factory=dict)  # id(val) -> "shape_i" | "O"
    width: dict[int, str] = field(default_factory=dict)  # id(val) -> "full" | "row"
    loads: list[tuple[Val, str]] = field(default_factory=list)  # (leaf, space)
    stores: list[tuple[Val, str]] = field(default_factory=list)  # (output, "full" | "keep" | "O")


def analyse(outs: list[Val]) -> RowSpec:
    """Check the graph fits the row template and assign spaces and widths; Unsupported otherwise."""
    nodes = topo(outs)
    reds = [v for v in nodes if v.op in REDUCTIONS or v.op in SCANS]
    if reds:
        shape_i, dims = reds[0].args[0].shape, reds[0].kw["dim"]
        for v in reds[1:]:
            if v.args[0].shape != shape_i or v.kw["dim"] != dims:
                raise Unsupported(
                    f"reductions over different dims or shapes ({v.op} over dims {list(v.kw['dim'])} of "
                    f"{list(v.args[0].shape)} and over dims {list(dims)} of {list(shape_i)})"
                )
    else:
        shape_i = broadcast(*[o.shape for o in outs])
        dims = (len(shape_i) - 1,)
    if not shape_i:
        raise Unsupported("a scalar computed from scalars")
    r = dims[0]
    shape_o = reduced(shape_i, dims, False)
    spec = RowSpec(shape_i, r, bool(reds), nodes, dims)
    R = len(shape_i)
    for v in nodes:
        if v.is_leaf:
            continue
        arg_spaces = {spec.space[id(a)] for a in v.vals() if not a.is_leaf}
        if v.op in REDUCTIONS or v.op in SCANS:
            if arg_spaces == {"O"}:
                raise Unsupported(f"a {v.op} of an already reduced value")
            # dims dropped from the front broadcast back like kept dims (torch aligns shapes on the right)
            sp = "O" if v.op in REDUCTIONS and not v.kw["keepdim"] and v.kw["dim"][0] != 0 else "shape_i"
        else:
            if arg_spaces == {"shape_i", "O"}:
                raise Unsupported(f"{v.op} mixes a reduced value (dim dropped) with full rows")
            sp = "O" if arg_spaces == {"O"} else "shape_i"
        target = shape_i if sp == "shape_i" else shape_o
        if v.op not in REDUCTIONS and broadcast(v.shape, target) != target:
            raise Unsupported(f"{v.op} makes shape {list(v.shape)}, which does not fit the loop over {list(shape_i)}")
        spec.space[id(v)] = sp
    seen: set[tuple[int, str]] = set()
    for v in nodes:
        if v.is_leaf:
            continue
        sp = "shape_i" if v.op in REDUCTIONS or v.op in SCANS else spec.space[id(v)]
        for a in v.vals():
            if a.is_leaf and (id(a), sp) not in seen:
                seen.add((id(a), sp))
                spec.loads.append((a, sp))
    for o in outs:
        if o.is_leaf:
            if (id(o), "shape_i") not in seen:
                seen.add((id(o), "shape_i"))
                spec.loads.append((o, "shape_i"))
            spec.space[id(o)] = "shape_i"
    if all(leaf.kw.get("scalar") for leaf, _ in spec.loads):
        raise Unsupported("a graph of scalar arguments only")
    for leaf, sp in spec.loads:
        lead = R - len(leaf.shape)
        covers = sp == "shape_i" and not leaf.kw.get("scalar") and any(
            d >= lead and leaf.shape[d - lead] != 1 for d in dims)
        spec.width[(id(leaf), sp)] = "full" if covers else "row"  # type: ignore[index]
    for v in nodes:
        if v.is_leaf:
            continue
        if v.op in REDUCTIONS:
            spec.width[id(v)] = "row"
        elif v.op in SCANS:
            spec.width[id(v)] = "full"
        else:
            sp = spec.space[id(v)]
            wide = any(
                spec.width[(id(a), sp)] == "full" if a.is_leaf else spec.width[id(a)] == "full"  # type: ignore[index]
                for a in v.vals()
            )
            spec.width[id(v)] = "full" if wide else "row"
    for o in outs:
        sp = spec.space[id(o)]
        row = _width(spec, o, sp) == "row"
        if sp == "shape_i" and o.shape == shape_i:
            spec.stores.append((o, "full"))
        elif sp == "shape_i" and o.shape == reduced(shape_i, dims, True) and row:
            spec.stores.append((o, "keep"))
        elif o.shape == shape_o and row:
            spec.stores.append((o, "O"))
        else:
            raise Unsupported(f"an output of shape {list(o.shape)} from a loop over {list(shape_i)}")
    return spec


def _width(spec: RowSpec, v: Val, sp: str) -> str:
    return spec.width[(id(v), sp)] if v.is_leaf else spec.width[id(v)]  # type: ignore[index]


def kernel_params(spec: RowSpec) -> tuple[list[str], list[int]]:
    """The kernel's parameter names (pointers, sizes, strides) and its outer (row) dims."""
    R, r = len(spec.shape_i) - len(spec.dims) + 1, spec.r
    outer = [d for d in range(R) if d != r]
    params = [f"in{k}" for k in range(len(spec.loads))] + [f"out{j}" for j in range(len(spec.stores))]
    params += ["M", "N"] + [f"S{d}" for d in outer]
    for k, (leaf, sp) in enumerate(spec.loads):
        if not leaf.kw.get("scalar"):
            params += [f"in{k}_s{d}" for d in outer] + ([f"in{k}_sr"] if sp == "shape_i" else [])
    for j, (_, kind) in enumerate(spec.stores):
        params += [f"out{j}_s{d}" for d in outer] + ([f"out{j}_sr"] if kind == "full" else [])
    return params, outer


def row_offsets(outer: list[int], prefix: str) -> str:
    """The [BLOCK_M, 1] offset of each row for tensor ``prefix`` (its strides over the outer dims)."""
    if not outer:
        return "(rem * 0)[:, None]"
    return "(" + " + ".join(f"i{d} * {prefix}_s{d}" for d in outer) + ")[:, None]"


def load_expr(spec: RowSpec, outer: list[int], k: int) -> str:
    """Load ``k`` as fp32: a full [BLOCK_M, BLOCK_N] tile, a [BLOCK_M, 1] row value, or a scalar argument."""
    leaf, sp = spec.loads[k]
    if leaf.kw.get("scalar"):
        return f"in{k}"
    full = spec.width[(id(leaf), sp)] == "full"  # type: ignore[index]
    off = row_offsets(outer, f"in{k}") + (f" + cols * in{k}_sr" if full else "")
    return f"tl.load(in{k} + {off}, mask={'mask' if full else 'mask_m'}, other=0.0).to(tl.float32)"


def kernel_source(spec: RowSpec) -> str:
    """The @triton.jit kernel of the row template for ``spec`` (one tile holds a whole row)."""
    params, outer = kernel_params(spec)
    L = [
        "@triton.jit",
        f"def _row_kernel({', '.join(params)}, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):",
        "    pid = tl.program_id(0)",
        "    num_n = tl.cdiv(N, BLOCK_N)",
        "    pid_m = pid // num_n",
        "    pid_n = pid % num_n",
        "    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)",
        "    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)",
        "    mask_m = (rm < M)[:, None]",
        "    mask = mask_m & (rn < N)[None, :]",
        "    cols = rn.to(tl.int64)[None, :]",
        "    rem = rm.to(tl.int64)",
    ]
    for d in reversed(outer):
        L.append(f"    i{d} = rem % S{d}")
        L.append(f"    rem = rem // S{d}")

    def rows(prefix: str) -> str:
        return row_offsets(outer, prefix)

    names: dict[object, str] = {}
    for k, (leaf, sp) in enumerate(spec.loads):
        L.append(f"    x{k} = {load_expr(spec, outer, k)}")
        names[(id(leaf), sp)] = f"x{k}"

    def ref(a: object, sp: str) -> str:
        if isinstance(a, Val):
            return names[(id(a), sp)] if a.is_leaf else names[id(a)]
        return lit(a)

    for i, v in enumerate(spec.nodes):
        if v.is_leaf:
            continue
        sp = "shape_i" if v.op in REDUCTIONS or v.op in SCANS else spec.space[id(v)]
        name = names[id(v)] = f"t{i}"
        args = [ref(a, sp) for a in v.args]
        if v.op in REDUCTIONS or v.op in SCANS:
            L += [f"    {line}" for line in _reduction(v, name, args[0])]
        else:
            L.append(f"    {name} = {pointwise(v, args)}")
    for j, (o, kind) in enumerate(spec.stores):
        val = ref(o, "shape_i" if kind != "O" else "O")
        if kind == "full":
            if _width(spec, o, "shape_i") == "row":
                val = f"({val} + tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32))"
            off, m = rows(f"out{j}") + f" + cols * out{j}_sr", "mask"
        else:
            off, m = rows(f"out{j}"), "mask_m & (pid_n == 0)"
        L.append(f"    tl.store(out{j} + {off}, ({val}).to(out{j}.dtype.element_ty), mask={m})")
    return "\n".join(L) + "\n"


def _reduction(v: Val, name: str, x: str) -> list[str]:
    if v.op == "sum":
        return [f"{name} = tl.sum(tl.where(mask, {x}, 0.0), axis=1)[:, None]"]
    if v.op == "mean":
        return [f"{name} = tl.sum(tl.where(mask, {x}, 0.0), axis=1)[:, None] / N"]
    if v.op in ("amax", "argmax"):
        fn = "tl.max" if v.op == "amax" else "tl.argmax"
        return [f'{name} = {fn}(tl.where(mask, {x}, float("-inf")), axis=1)[:, None]']
    if v.op in ("amin", "argmin"):
        fn = "tl.min" if v.op == "amin" else "tl.argmin"
        return [f'{name} = {fn}(tl.where(mask, {x}, float("inf")), axis=1)[:, None]']
    if v.op == "var":
        return [
            f"{name}_m = tl.sum(tl.where(mask, {x}, 0.0), axis=1)[:, None] / N",
            f"{name}_d = tl.where(mask, {x} - {name}_m, 0.0)",
            f"{name} = tl.sum({name}_d * {name}_d, axis=1)[:, None] / (N - {v.kw['correction']})",
        ]
    if v.op == "prod":
        return [f"{name} = tl.reduce(tl.where(mask, {x}, 1.0), 1, _mul_combine)[:, None]"]
    if v.op == "cumsum":
        return [f"{name} = tl.cumsum(tl.where(mask, {x}, 0.0), axis=1)"]
    if v.op == "cumprod":
        return [f"{name} = tl.cumprod(tl.where(mask, {x}, 1.0), axis=1)"]
    raise Unsupported(f"no row template for {v.op}")


def launcher_source(spec: RowSpec, leaf_count: int, out_dtypes: list[str], config: dict, returns_tuple: bool) -> str:
    """The Python wrapper ``_launch(*leaves)``: shapes, strides, output allocation, grid and launch.

    The reduced dims (adjacent) are merged into one kernel dim ``r`` with a reshape (a view when strides allow).
    """
    rank, r, d1 = len(spec.shape_i), spec.r, spec.dims[-1]
    outer = [d for d in range(rank - len(spec.dims) + 1) if d != r]
    L = [f"def _launch({', '.join(f'a{i}' for i in range(leaf_count))}):"]
    L.append("    " + "; ".join(f"_L{k} = a{_leaf_index(spec, k)}" for k in range(len(spec.loads))))
    i_loads = [k for k, (leaf, sp) in enumerate(spec.loads) if sp == "shape_i" and not leaf.kw.get("scalar")]
    L.append(f"    shape = tuple(torch.broadcast_shapes({', '.join(f'_L{k}.shape' for k in i_loads)}))")
    L.append(f"    assert len(shape) == {rank}, 'ModelNew was generated for rank-{rank} inputs'")
    L.append(f"    kshape = shape[:{r}] + (math.prod(shape[{r}:{d1 + 1}]),) + shape[{d1 + 1}:]")
    L.append(f"    outer = [kshape[d] for d in {outer}]")
    L.append(f"    N = kshape[{r}]")
    L.append("    M = math.prod(outer)")
    L.append("    oshape = tuple(outer)")
    L.append(f"    device = _L{i_loads[0]}.device")
    args, strides = [], []
    for k, (leaf, sp) in enumerate(spec.loads):
        if leaf.kw.get("scalar"):
            L.append(f"    e{k} = float(_L{k})")
        elif sp == "shape_i":
            L.append(f"    e{k} = _L{k}.expand(shape).reshape(kshape)")
            strides.append(f"*[e{k}.stride(d) for d in {outer}], e{k}.stride({r})")
        else:
            L.append(f"    e{k} = _L{k}.expand(oshape)")
            strides.append(f"*e{k}.stride()")
        args.append(f"e{k}")
    outs = []
    keep = f"tuple(1 if {r} <= d <= {d1} else s for d, s in enumerate(shape))"
    for j, (_, kind) in enumerate(spec.stores):
        shp = {"full": "shape", "keep": keep, "O": "oshape"}[kind]
        L.append(f"    out{j} = torch.empty({shp}, dtype={out_dtypes[j]}, device=device)")
        outs.append(f"out{j}")
        if kind == "full":
            L.append(f"    k{j} = out{j}.view(kshape)")
            strides.append(f"*[k{j}.stride(d) for d in {outer}], k{j}.stride({r})")
        elif kind == "keep":
            L.append(f"    k{j} = out{j}.view(kshape[:{r}] + (1,) + kshape[{r + 1}:])")
            strides.append(f"*[k{j}.stride(d) for d in {outer}]")
        else:
            strides.append(f"*out{j}.stride()")
    L.append("    looped, BLOCK_N = False, triton.next_power_of_2(N)")
    if spec.reduces:  # a row longer than one tile is walked in chunks by the looped kernel
        L.append(f"    if BLOCK_N > {config['MAX_TILE']}:")
        L.append(f"        looped, BLOCK_N = True, {config['CHUNK']}")
        L.append(f"    BLOCK_M = max(1, min({config['ROWS']}, {config['MAX_TILE']} // BLOCK_N))")
        L.append("    tiles_n = 1")
    else:
        L.append(f"    BLOCK_N = min({config['BLOCK_SIZE']}, BLOCK_N)")
        L.append(f"    BLOCK_M = max(1, {config['BLOCK_SIZE']} // BLOCK_N)")
        L.append("    tiles_n = triton.cdiv(N, BLOCK_N)")
    L.append("    if M * N > 0:")
    L.append("        grid = (triton.cdiv(M, BLOCK_M) * tiles_n,)")
    call = (f"[grid]({', '.join(args + outs)}, M, N, *outer, {', '.join(strides)}, "
            f"BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, num_warps={config['num_warps']}, num_stages={config['num_stages']})")
    if spec.reduces:
        L.append("        if looped:")
        L.append(f"            _row_loop_kernel{call}")
        L.append("        else:")
        L.append(f"            _row_kernel{call}")
    else:
        L.append(f"        _row_kernel{call}")
    ret = ", ".join(outs)
    L.append(f"    return ({ret},)" if returns_tuple else f"    return {ret}")
    return "\n".join(L) + "\n"


def _leaf_index(spec: RowSpec, k: int) -> int:
    leaf = spec.loads[k][0]
    return leaf.kw["_index"]
