"""The matmul template: one tiled GEMM (2-D, batched, transposed operands, matrix-vector, nn.Linear)
with pointwise prologues on its operands and a pointwise epilogue (bias, activations, scaling,
residual adds) fused into the same kernel.

Operands and epilogue inputs reach the kernel as [batch, rows, cols] views with strides, so transposes
cost nothing; when the right operand has no batch dims the left operand's batch dims fold into M.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .exprs import lit, pointwise
from .ir import POINTWISE, Unsupported, Val, broadcast, topo


@dataclass
class MatmulSpec:
    """The matmul, its operands' prologue nodes, the epilogue nodes and the loads of each space."""

    mm: Val
    out: Val
    pro: dict[str, list[Val]] = field(default_factory=dict)  # "A"/"B" -> nodes (topological)
    epi: list[Val] = field(default_factory=list)
    loads: dict[str, list[Val]] = field(default_factory=dict)  # "A"/"B"/"C" -> tensor leaves
    scalars: list[Val] = field(default_factory=list)  # Python-number forward arguments (kernel scalars)


def analyse(outs: list[Val]) -> MatmulSpec:
    """Check the graph is one matmul with pointwise prologues/epilogue; Unsupported otherwise."""
    nodes = topo(outs)
    mms = [v for v in nodes if v.op == "matmul"]
    if len(mms) != 1:
        raise Unsupported(f"{len(mms)} matmuls in one graph (attention-shaped or chained GEMMs need an LLM)")
    if len(outs) != 1:
        raise Unsupported("a matmul graph with several outputs")
    mm, out = mms[0], outs[0]
    spec = MatmulSpec(mm, out)
    used: set[int] = set()
    for side, operand in zip("AB", mm.args, strict=True):
        part = topo([operand])
        for v in part:
            if not v.is_leaf and v.op not in POINTWISE:
                raise Unsupported(f"a {v.op} before a matmul (only pointwise prologues fuse into the GEMM)")
            if not v.is_leaf and broadcast(v.shape, operand.shape) != operand.shape:
                raise Unsupported(f"{v.op} of shape {list(v.shape)} before a matmul operand {list(operand.shape)}")
            if not v.is_leaf and id(v) in used:
                raise Unsupported("one computed value feeds both matmul operands")
        spec.pro[side] = [v for v in part if not v.is_leaf]
        spec.loads[side] = _leaves(part)
        used |= {id(v) for v in spec.pro[side]}
    epi = [v for v in nodes if v is not mm and id(v) not in used and not (v.is_leaf and v in _all_pro_leaves(spec))]
    for v in epi:
        if v.is_leaf:
            continue
        if v.op not in POINTWISE:
            raise Unsupported(f"a {v.op} after a matmul (only pointwise epilogues fuse into the GEMM)")
        if broadcast(v.shape, mm.shape) != mm.shape:
            raise Unsupported(f"{v.op} of shape {list(v.shape)} after a matmul of shape {list(mm.shape)}")
        if any(not a.is_leaf and id(a) in used for a in v.vals()):
            raise Unsupported("a value computed before the matmul is used again after it")
    if out.shape != mm.shape:
        raise Unsupported(f"the output {list(out.shape)} is not the matmul's shape {list(mm.shape)}")
    spec.epi = [v for v in epi if not v.is_leaf]
    spec.loads["C"] = [a for a in _leaves(nodes) if any(a in [x for x in v.vals()] for v in spec.epi)]
    spec.scalars = [v for v in _leaves(nodes) if v.kw.get("scalar")]
    spec.loads = {side: [v for v in leaves if not v.kw.get("scalar")] for side, leaves in spec.loads.items()}
    if not spec.loads["A"] or not spec.loads["B"]:
        raise Unsupported("a matmul operand made from Python numbers only")
    return spec


def _leaves(nodes: list[Val]) -> list[Val]:
    return [v for v in nodes if v.is_leaf]


def _all_pro_leaves(spec: MatmulSpec) -> list[Val]:
    return [leaf for side in spec.loads.values() for leaf in side]


def kernel_source(spec: MatmulSpec) -> str:
    """The @triton.jit GEMM kernel with the fused prologues and epilogue."""
    A, B, C = spec.loads["A"], spec.loads["B"], spec.loads["C"]
    ptrs = [f"a{i}" for i in range(len(A))] + [f"b{i}" for i in range(len(B))] + [f"c{i}" for i in range(len(C))]
    ptrs += [f"s{i}" for i in range(len(spec.scalars))]
    strides = [f"a{i}_s{x}" for i in range(len(A)) for x in "bmk"] + [f"b{i}_s{x}" for i in range(len(B)) for x in "bkn"]
    strides += [f"c{i}_s{x}" for i in range(len(C)) for x in "bmn"] + ["o_sb", "o_sm", "o_sn"]
    L = [
        "@triton.jit",
        f"def _matmul_kernel({', '.join(ptrs + ['out', 'M', 'N', 'K'] + strides)},",
        "                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):",
        "    pid = tl.program_id(0)",
        "    bid = tl.program_id(1).to(tl.int64)",
        "    num_m = tl.cdiv(M, BLOCK_M)",
        "    num_n = tl.cdiv(N, BLOCK_N)",
        "    group = GROUP_M * num_n",
        "    first_m = (pid // group) * GROUP_M",
        "    gsize = tl.minimum(num_m - first_m, GROUP_M)",
        "    pid_m = first_m + (pid % group) % gsize",
        "    pid_n = (pid % group) // gsize",
        "    rm = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)",
        "    rn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)",
        "    rk = tl.arange(0, BLOCK_K).to(tl.int64)",
        "    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)",
        "    for k0 in range(0, K, BLOCK_K):",
        "        kk = k0 + rk",
        "        mask_a = (rm < M)[:, None] & (kk < K)[None, :]",
        "        mask_b = (kk < K)[:, None] & (rn < N)[None, :]",
    ]
    names: dict[int, str] = {id(leaf): f"s{i}" for i, leaf in enumerate(spec.scalars)}
    for i, leaf in enumerate(A):
        names[id(leaf)] = f"xa{i}"
        L.append(f"        xa{i} = tl.load(a{i} + bid * a{i}_sb + rm[:, None] * a{i}_sm + kk[None, :] * a{i}_sk, "
                 "mask=mask_a, other=0.0).to(tl.float32)")
    for i, leaf in enumerate(B):
        names[id(leaf)] = f"xb{i}"
        L.append(f"        xb{i} = tl.load(b{i} + bid * b{i}_sb + kk[:, None] * b{i}_sk + rn[None, :] * b{i}_sn, "
                 "mask=mask_b, other=0.0).to(tl.float32)")
    tiles = {}
    for side, mask in (("A", "mask_a"), ("B", "mask_b")):
        L += _emit(spec.pro[side], names, "        ", f"p{side.lower()}")
        operand = spec.mm.args[0 if side == "A" else 1]
        tiles[side] = names[id(operand)] if not spec.pro[side] else f"tl.where({mask}, {names[id(operand)]}, 0.0)"
    L.append(f"        acc += tl.dot({tiles['A']}, {tiles['B']}, input_precision=\"ieee\")")
    L.append("    mask_c = (rm < M)[:, None] & (rn < N)[None, :]")
    for i, leaf in enumerate(C):
        names[id(leaf)] = f"xc{i}"
        L.append(f"    xc{i} = tl.load(c{i} + bid * c{i}_sb + rm[:, None] * c{i}_sm + rn[None, :] * c{i}_sn, "
                 "mask=mask_c, other=0.0).to(tl.float32)")
    names[id(spec.mm)] = "acc"
    L += _emit(spec.epi, names, "    ", "e")
    L.append(f"    res = {names[id(spec.out)]} + tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)")
    L.append("    tl.store(out + bid * o_sb + rm[:, None] * o_sm + rn[None, :] * o_sn, "
             "res.to(out.dtype.element_ty), mask=mask_c)")
    return "\n".join(L) + "\n"


def _emit(nodes: list[Val], names: dict[int, str], indent: str, prefix: str) -> list[str]:
    lines = []
    for i, v in enumerate(nodes):
        args = [names[id(a)] if isinstance(a, Val) else lit(a) for a in v.args]
        names[id(v)] = f"{prefix}{i}"
        lines.append(f"{indent}{prefix}{i} = {pointwise(v, args)}")
    return lines


def launcher_source(spec: MatmulSpec, leaf_count: int, out_dtype: str, config: dict) -> str:
    """The wrapper: [batch, rows, cols] views of every load, output allocation, grid and launch."""
    a, b = spec.mm.args
    fold = len(b.shape) <= 2
    ins = [f"x{i}" for i in range(leaf_count)]
    L = [f"def _launch({', '.join(ins)}):"]
    idx = lambda leaf: f"x{leaf.kw['_index']}"  # noqa: E731
    first = spec.loads["A"][0] if spec.loads["A"] else spec.loads["B"][0]
    L.append(f"    device = {idx(first)}.device")
    L.append(f"    ashape = tuple(torch.broadcast_shapes({', '.join(idx(x) + '.shape' for x in spec.loads['A'])}))")
    L.append(f"    bshape = tuple(torch.broadcast_shapes({', '.join(idx(x) + '.shape' for x in spec.loads['B'])}))")
    L.append("    oshape = tuple(torch.matmul(torch.empty(ashape, device='meta'), torch.empty(bshape, device='meta')).shape)")
    L.append("    a2 = ashape if len(ashape) > 1 else (1,) + ashape")
    L.append("    b2 = bshape if len(bshape) > 1 else bshape + (1,)")
    L.append("    M, K, N = a2[-2], a2[-1], b2[-1]")
    L.append("    batch = tuple(torch.broadcast_shapes(a2[:-2], b2[:-2]))")
    L.append(f"    fold = {fold}")
    L.append("    if fold:")
    L.append("        M = math.prod(a2[:-1])")
    L.append("    nb = 1 if fold else math.prod(batch)")
    L.append("    c2 = (M, N) if fold else (nb, M, N)")
    args, strides = [], []
    for side, view in (("A", "_as_a"), ("B", "_as_b"), ("C", "_as_c")):
        for i, leaf in enumerate(spec.loads[side]):
            name = f"v{side.lower()}{i}"
            L.append(f"    {name} = {view}({idx(leaf)}, ashape, bshape, oshape, batch, fold)")
            args.append(name)
            strides.append(f"*{name}.stride()")
    args += [f"float({idx(leaf)})" for leaf in spec.scalars]
    L.append(f"    out = torch.empty((nb, M, N), dtype={out_dtype}, device=device)")
    L.append("    if M * N > 0:")
    L.append(f"        grid = (triton.cdiv(M, {config['BLOCK_M']}) * triton.cdiv(N, {config['BLOCK_N']}), nb)")
    L.append(
        f"        _matmul_kernel[grid]({', '.join(args)}, out, M, N, K, {', '.join(strides)}, *out.stride(), "
        f"BLOCK_M={config['BLOCK_M']}, BLOCK_N={config['BLOCK_N']}, BLOCK_K={config['BLOCK_K']}, "
        f"GROUP_M={config['GROUP_M']}, num_warps={config['num_warps']}, num_stages={config['num_stages']})"
    )
    L.append("    return out.view(oshape)")
    return "\n".join(L) + "\n" + VIEW_HELPERS


VIEW_HELPERS = '''

def _as_a(t, ashape, bshape, oshape, batch, fold):
    t = t.expand(ashape)
    if len(ashape) == 1:
        t = t.unsqueeze(0)
    if fold:
        return t.reshape(-1, t.shape[-1]).unsqueeze(0)
    return t.expand(batch + tuple(t.shape[-2:])).reshape(-1, t.shape[-2], t.shape[-1])


def _as_b(t, ashape, bshape, oshape, batch, fold):
    t = t.expand(bshape)
    if len(bshape) == 1:
        t = t.unsqueeze(-1)
    if fold:
        return t.unsqueeze(0)
    return t.expand(batch + tuple(t.shape[-2:])).reshape(-1, t.shape[-2], t.shape[-1])


def _as_c(t, ashape, bshape, oshape, batch, fold):
    t = t.expand(oshape)
    if len(ashape) == 1:
        t = t.unsqueeze(-1 if len(bshape) == 1 else -2)
    if len(bshape) == 1:
        t = t.unsqueeze(-1)
    if fold:
        return t.reshape(-1, t.shape[-1]).unsqueeze(0)
    return t.reshape(-1, t.shape[-2], t.shape[-1])
'''
