"""The template coder matches by what a graph computes: variants written in styles the project never saw
(functional, method, module, written out as primitives) give the same ops and a correct ModelNew under the
Triton interpreter; unknown patterns give a one-line NeedsLLM; bad configs and files fail in one line."""

from __future__ import annotations

import importlib.util
import itertools
import textwrap

import pytest
import torch

from tunesmith.kernels.generation import KernelPlan, NeedsLLM, ProblemError, plan_kernel
from tunesmith.runners.errors import JobError

_ids = itertools.count()
HEAD = "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"


def problem(tmp_path, forward: str, shapes: list[tuple], init: str = "", init_args: str = "[]", args: str = "x"):
    """Write a KernelBench-format problem whose forward returns ``forward`` (an expression or a body)."""
    body = forward if "return" in forward else f"return {forward}"
    ind = lambda text, n: textwrap.indent(textwrap.dedent(text).strip() or "pass", " " * n)  # noqa: E731
    src = HEAD + "\n".join([
        "class Model(nn.Module):",
        "    def __init__(self, *args):",
        "        super().__init__()",
        ind(init, 8),
        "",
        f"    def forward(self, {args}):",
        ind(body, 8),
        "",
        "",
        "def get_inputs():",
        f"    return [torch.randn(*s) for s in {shapes!r}]",
        "",
        "",
        "get_small_inputs = get_inputs",
        "",
        "",
        "def get_init_inputs():",
        f"    return {init_args}",
        "",
    ])
    path = tmp_path / f"variant_{next(_ids)}.py"
    path.write_text(src)
    return path


def run_both(path, plan: KernelPlan, config: dict | None = None, tmp=None, inputs=None):
    gen_path = path.with_name(path.stem + f"_new{next(_ids)}.py")
    gen_path.write_text(plan.render(config or plan.default_config()))
    spec = importlib.util.spec_from_file_location(gen_path.stem, gen_path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    ref_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref_mod)
    torch.manual_seed(7)
    ref = ref_mod.Model(*ref_mod.get_init_inputs())
    torch.manual_seed(7)
    new = gen.ModelNew(*ref_mod.get_init_inputs())
    torch.manual_seed(99)  # fresh inputs, not the ones the plan was traced with
    xs = inputs if inputs is not None else ref_mod.get_inputs()
    with torch.no_grad():
        want, got = ref(*xs), new(*xs)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    return got


@pytest.fixture(autouse=True)
def interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def plans(tmp_path, variants, shapes, **kw):
    out = []
    for v in variants:
        path = problem(tmp_path, v, shapes, **kw)
        plan = plan_kernel(path)
        assert isinstance(plan, KernelPlan), (v, getattr(plan, "reason", ""))
        run_both(path, plan)
        out.append(plan)
    return out


SOFTMAX = [
    "torch.softmax(x, dim=-1)",
    "F.softmax(x, dim=1)",
    "x.softmax(-1)",
    "torch.exp(x - x.max(dim=-1, keepdim=True)[0]) / torch.exp(x - x.max(dim=-1, keepdim=True)[0]).sum(-1, keepdim=True)",
    "e = (x - torch.amax(x, 1, True)).exp()\nreturn e / torch.sum(e, dim=1, keepdim=True)",
]


def test_softmax_spellings_give_one_graph_and_correct_kernels(tmp_path):
    ps = plans(tmp_path, SOFTMAX, [(5, 37)])
    assert len({tuple(p.signature["ops"]) for p in ps}) == 1
    assert all(p.pattern.startswith("softmax") for p in ps)
    module = problem(tmp_path, "self.sm(x)", [(5, 37)], init="self.sm = nn.Softmax(dim=-1)")
    assert plan_kernel(module).signature == ps[0].signature


def test_layer_norm_module_functional_and_primitives(tmp_path):
    shapes = [(3, 4, 24)]
    module = problem(tmp_path, "self.ln(x)", shapes, init="self.ln = nn.LayerNorm(24, eps=1e-6)")
    functional = problem(
        tmp_path, "F.layer_norm(x, (24,), self.w, self.b, 1e-6)", shapes,
        init="self.w = nn.Parameter(torch.randn(24))\nself.b = nn.Parameter(torch.randn(24))",
    )
    written = problem(
        tmp_path,
        "mu = x.mean(-1, keepdim=True)\nvar = ((x - mu) ** 2).mean(-1, keepdim=True)\n"
        "return (x - mu) / torch.sqrt(var + 1e-5) * self.g",
        shapes, init="self.g = nn.Parameter(torch.rand(24) + 0.5)",
    )
    no_affine = problem(tmp_path, "F.layer_norm(x, x.shape[-1:])", shapes)
    var_style = problem(tmp_path, "(x - x.mean(dim=2, keepdim=True)) * torch.rsqrt(x.var(dim=2, keepdim=True, unbiased=False) + 1e-5)", shapes)
    got = {}
    for name, path in [("module", module), ("functional", functional), ("written", written),
                       ("no_affine", no_affine), ("var_style", var_style)]:
        plan = plan_kernel(path)
        assert isinstance(plan, KernelPlan), (name, getattr(plan, "reason", ""))
        assert plan.template == "reduce"
        run_both(path, plan)
        got[name] = plan
    assert got["module"].signature["ops"] == got["functional"].signature["ops"]
    assert "layer norm" in got["module"].pattern


def test_rms_norm_spellings(tmp_path):
    shapes = [(6, 40)]
    init = "self.weight = nn.Parameter(torch.randn(40))"
    ps = plans(tmp_path, [
        "x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight",
        "x / torch.sqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-6) * self.weight",
        "F.rms_norm(x, (40,), self.weight, 1e-6)",
    ], shapes, init=init)
    assert "RMS norm" in ps[0].pattern


def test_mean_spellings_and_non_last_dims(tmp_path):
    ps = plans(tmp_path, ["x.mean(-1, keepdim=True)", "torch.mean(x, dim=1, keepdim=True)"], [(5, 19)])
    assert ps[0].signature["ops"] == ps[1].signature["ops"]
    plans(tmp_path, ["torch.sum(x, 0)", "x.max(dim=1).values", "torch.argmin(x, dim=2, keepdim=True)",
                     "torch.cumsum(x * 2.0, dim=1)", "F.log_softmax(x, dim=0)"], [(4, 9, 6)])


def test_full_and_multi_dim_reductions_losses_and_norms(tmp_path):
    ps = plans(tmp_path, [
        "torch.mean((x - y) ** 2)",
        "F.mse_loss(x, y, reduction='sum')",
        "F.huber_loss(x, y, delta=0.5)",
        "x.sum()",
        "torch.argmax(x)",
        "torch.amax(x, dim=(1, 2), keepdim=True) - x",
        "x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)",
        "F.normalize(x, dim=1)",
        "torch.prod(y, dim=2) + torch.norm(y, p=1, dim=2)",
        "F.layer_norm(x, x.shape[1:])",
    ], [(3, 5, 7), (3, 5, 7)], args="x, y")
    assert "every dim" in ps[0].pattern and ps[0].signature["ops"][-1] == "mean[dim=-3,-2,-1]"


def test_boolean_mask_inputs(tmp_path):
    src = problem(tmp_path, "torch.cumsum(torch.where(m, x, 0.0) + x * m, dim=1)", [(4, 13), (4, 13)], args="x, m")
    src.write_text(src.read_text().replace("for s in [(4, 13), (4, 13)]]", "for s in [(4, 13)]] + [torch.rand(4, 13) > 0.5]"))
    plan = plan_kernel(src)
    assert isinstance(plan, KernelPlan), getattr(plan, "reason", "")
    run_both(src, plan)


def test_elementwise_prologue_and_epilogue_fuse_around_a_reduction(tmp_path):
    (plan,) = plans(tmp_path, ["torch.sigmoid(torch.softmax(F.gelu(x) * 3.0 + y, dim=-1)) - 0.5"], [(4, 33), (33,)],
                    args="x, y")
    assert plan.template == "reduce" and "softmax" in plan.pattern


def test_elementwise_styles_broadcasts_and_scalars(tmp_path):
    plans(tmp_path, [
        "torch.where(x > 0, x, 0.2 * x) + torch.clamp(y, max=0.5) - 1 / (1 + torch.exp(-x))",
        "F.silu(x) * F.hardsigmoid(y) + F.softplus(x) - torch.abs(y) ** 2",
        "F.gelu(x, approximate='tanh') + F.elu(y) + torch.maximum(x, y) + F.relu6(x) + F.mish(y)",
        "2.0 ** x + torch.pow(y, 2) + torch.tanh(x) * y - torch.sqrt(torch.abs(y) + 1.0) + x.clamp(min=0.0) ** 0.5",
    ], [(3, 1, 17), (5, 17)], args="x, y")


def test_matmul_spellings_and_epilogues(tmp_path):
    ps = plans(tmp_path, ["x @ w.t()", "torch.matmul(x, w.mT)", "F.linear(x, w)", "torch.mm(x, w.transpose(0, 1))"],
               [(9, 20), (13, 20)], args="x, w")
    assert len({tuple(p.signature["ops"]) for p in ps}) == 1
    (plan,) = plans(tmp_path, ["F.relu(torch.bmm(a, b) * 0.5 + r)"], [(2, 7, 18), (2, 18, 11), (11,)], args="a, b, r")
    assert "epilogue" in plan.pattern
    (plan,) = plans(tmp_path, ["torch.relu(x) @ w + 1.0"], [(6, 17), (17, 19)], args="x, w")
    assert "prologue" in plan.pattern


def test_non_contiguous_inputs_and_other_shapes_at_run_time(tmp_path):
    path = problem(tmp_path, "torch.softmax(x * 2.0, dim=-1)", [(4, 10)])
    plan = plan_kernel(path)
    x = torch.randn(30, 6).t()  # non-contiguous, a different shape than traced
    run_both(path, plan, inputs=[x])
    path = problem(tmp_path, "a @ b", [(5, 8), (8, 3)], args="a, b")
    run_both(path, plan_kernel(path), inputs=[torch.randn(8, 33).t(), torch.randn(8, 17)])


def test_configs_change_the_source_and_stay_correct(tmp_path):
    path = problem(tmp_path, "torch.softmax(x, dim=-1)", [(9, 50)])
    plan = plan_kernel(path)
    assert all(p.apply == "meta" for p in plan.space().params)
    looped = {"MAX_TILE": 16, "CHUNK": 16}  # rows longer than a tile: the looped kernel walks them in chunks
    for cfg in ({"ROWS": 4, "num_warps": 2}, {"ROWS": 64, "MAX_TILE": 1024}, looped, {**looped, "MAX_TILE": 32, "ROWS": 8}):
        run_both(path, plan, cfg)
    assert plan.render({"ROWS": 4}) != plan.render({"ROWS": 8})
    assert "_row_loop_kernel" in plan.render(looped)
    assert plan.space().violations({**plan.default_config(), "CHUNK": 4096, "MAX_TILE": 1024})
    with pytest.raises(JobError, match="ROWS"):
        plan.render({"ROWS": 3})
    with pytest.raises(JobError, match="unknown parameter"):
        plan.render({"BLOCK_Q": 16})


@pytest.mark.parametrize(
    ("forward", "words"),
    [
        ("torch.sort(x, dim=-1)[0]", "sort"),
        ("x.cumsum(1).sum(0).cumsum(0)", "different dims"),
        ("x.unsqueeze(1).sum(dim=(0, 2))", "not adjacent"),
        ("(x > 0).sum(-1)", "int64 output"),
        ("(x * 2).reshape(-1)", "reshape"),
        ("x.softmax(0).softmax(1).softmax(0)", "different dims"),
        ("x[:, 1:] * 2", "slicing"),
    ],
)
def test_unknown_patterns_need_an_llm_in_one_line(tmp_path, forward, words):
    plan = plan_kernel(problem(tmp_path, forward, [(4, 6)]))
    assert isinstance(plan, NeedsLLM), forward
    assert words in plan.reason and "\n" not in plan.reason and "LLM" in plan.reason


def test_missing_or_broken_problem_is_a_problem_error(tmp_path):
    with pytest.raises(ProblemError, match="does not exist"):
        plan_kernel(tmp_path / "nope.py")
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\n")
    with pytest.raises(ProblemError, match="has no Model"):
        plan_kernel(bad)
