"""KernelBench-style problems the project's problem set does not hold, checked by an independent harness.

Each file under tests/data/kernelbench/ is a KernelBench-format problem (level-1 softmax, norm, reduction,
scan, activation and loss problems, a few level-2 fusions) with ``get_small_inputs()`` added. The template
coder either writes a ModelNew that this file's own harness (not the project's evaluator) finds equal to
the reference on fresh signed inputs under the Triton interpreter, or answers with a one-line NeedsLLM.
A handful run by default; the rest are marked slow.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TRITON_INTERPRET", "1")

from tunesmith.kernels.generation import NeedsLLM, plan_kernel  # noqa: E402

DATA = Path(__file__).parent / "data" / "kernelbench"
_ids = itertools.count()

FAST = ["91_cumsum_reverse", "92_cumsum_exclusive", "extra_activations", "softmin_cosine", "37_FrobeniusNorm_",
        "100_HingeLoss", "27_SELU_", "11_4D_tensor_matrix_multiplication", "97_CosineSimilarityLoss",
        "99_TripletMarginLoss", "99_Matmul_GELU_Softmax"]
NEEDS_LLM = {  # genuinely outside the templates: a one-line refusal, never a kernel
    "12_Matmul_with_diagonal_matrices_": "diag",
    "33_BatchNorm": "BatchNorm2d",
    "35_GroupNorm_": "GroupNorm",
    "41_Max_Pooling_1D": "MaxPool1d",
    "95_CrossEntropyLoss": "cross_entropy",
    "45_Gemm_Sigmoid_Sum_LogSumExp": "after a matmul",
}
ALL = sorted(p.stem for p in DATA.glob("*.py"))
COVERED_SLOW = [n for n in ALL if n not in FAST and n not in NEEDS_LLM]


def _load(path: Path):
    name = f"_kb_probe_{next(_ids)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _fresh(example: list, gen: torch.Generator) -> list:
    """New inputs shaped like ``example``: signed and scaled, except where the problem needs a domain."""
    out = []
    for t in example:
        if not isinstance(t, torch.Tensor):
            out.append(t)
        elif t.dtype == torch.bool:
            out.append(torch.randint(0, 2, t.shape, generator=gen).bool())
        elif set(t.unique().tolist()) <= {-1.0, 1.0}:  # +-1 labels
            out.append(torch.randint(0, 2, t.shape, generator=gen).float() * 2 - 1)
        elif t.min() >= 0 and torch.allclose(t.sum(-1), torch.ones(())):  # probability rows
            out.append(torch.randn(t.shape, generator=gen).softmax(-1))
        elif t.min() > 0:  # a positive-only input (cumprod's domain)
            out.append(torch.rand(t.shape, generator=gen) + 0.5)
        else:
            out.append(torch.randn(t.shape, generator=gen) * 3)
    return out


def independent_check(problem: Path, model_new: Path, seeds=(11, 12, 13)) -> None:
    """Build Model and ModelNew with the same seed, compare them on fresh inputs at 1e-4 / 1e-5."""
    ref, new = _load(problem), _load(model_new)
    init = ref.get_init_inputs()
    torch.manual_seed(0)
    model = ref.Model(*init)
    torch.manual_seed(0)
    candidate = new.ModelNew(*init)
    for seed in seeds:
        xs = _fresh(ref.get_small_inputs(), torch.Generator().manual_seed(seed))
        before = [x.clone() if isinstance(x, torch.Tensor) else x for x in xs]
        with torch.no_grad():
            expected = model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in xs])
            got = candidate(*xs)
        for x, b in zip(xs, before, strict=True):
            if isinstance(x, torch.Tensor):
                assert torch.equal(x, b), f"{problem.stem}: ModelNew changed its input"
        assert isinstance(got, torch.Tensor), f"{problem.stem}: ModelNew returned {type(got).__name__}"
        assert got.shape == expected.shape and got.dtype == expected.dtype, (
            f"{problem.stem}: {tuple(got.shape)} {got.dtype} vs {tuple(expected.shape)} {expected.dtype}")
        err = (got.double() - expected.double()).abs().max().item() if got.numel() else 0.0
        if torch.allclose(got.double(), expected.double(), rtol=1e-4, atol=1e-5):
            continue
        # fp32 summation order alone can exceed 1e-5 near zero (a dot product with cancellation): then the
        # kernel must be as close to a float64 evaluation of the reference as torch's own fp32 result is
        with torch.no_grad():
            exact = model.double()(*[x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
                                     for x in xs]).double()
        model.float()
        torch_err = (expected.double() - exact).abs().max().item()
        ours = (got.double() - exact).abs().max().item()
        assert ours <= 4 * torch_err + 1e-6, (
            f"{problem.stem}: seed {seed} max abs err {err:.3g} vs torch; {ours:.3g} vs float64 "
            f"(torch's fp32 result: {torch_err:.3g})")


def _generate_and_check(name: str, tmp_path: Path) -> None:
    problem = DATA / f"{name}.py"
    plan = plan_kernel(problem, small=True)
    assert not isinstance(plan, NeedsLLM), f"{name}: {plan.reason}"
    out = tmp_path / f"{name}_model_new.py"
    out.write_text(plan.render(plan.default_config()))
    independent_check(problem, out)


@pytest.mark.parametrize("name", FAST)
def test_covered_problem_is_correct_on_fresh_inputs(name, tmp_path):
    _generate_and_check(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", COVERED_SLOW)
def test_covered_problem_is_correct_on_fresh_inputs_slow(name, tmp_path):
    _generate_and_check(name, tmp_path)


@pytest.mark.parametrize("name", sorted(NEEDS_LLM))
def test_uncovered_problem_gets_one_line_needs_llm(name):
    plan = plan_kernel(DATA / f"{name}.py", small=True)
    assert isinstance(plan, NeedsLLM), f"{name} was covered as {plan.pattern!r}"
    assert "\n" not in plan.reason and NEEDS_LLM[name] in plan.reason and "LLM" in plan.reason


@pytest.mark.parametrize("forward", [
    "torch.flip(x, [1])",  # a bare flip has no template
    "torch.cumprod(x.flip(1), 1).flip(1)",  # a reverse cumprod is not rewritten
    "torch.cumsum(x.flip(1), 0).flip(1)",  # flipped along another dim than the scan
    "torch.cat((x, x), 1)",
    "(x.sum(1), x.sum(1).mean())",  # an output before the second pass
    "x.unsqueeze(0).sum(2).sum(1).sum(0)",  # three levels of reduction
    "torch.cumsum(torch.cat((torch.zeros_like(x[:, :2]), x), 1).narrow(1, 0, x.size(1)), 1)",  # shift by 2
])
def test_near_misses_of_rewritten_patterns_are_refused(forward, tmp_path):
    path = tmp_path / f"near_miss_{next(_ids)}.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\n\n\nclass Model(nn.Module):\n"
        f"    def forward(self, x):\n        return {forward}\n\n\n"
        "def get_inputs():\n    return [torch.randn(4, 16)]\n\n\nget_small_inputs = get_inputs\n\n\n"
        "def get_init_inputs():\n    return []\n")
    plan = plan_kernel(path, small=True)
    assert isinstance(plan, NeedsLLM), f"{forward} was covered as {plan.pattern!r}"
    assert "\n" not in plan.reason


def _tune(*args: str, state: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TRITON_INTERPRET="1")
    return subprocess.run(["tune", "kernel", *args, "--state-dir", str(state)], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["92_cumsum_exclusive", "91_cumsum_reverse"])
def test_tune_kernel_cli_writes_a_model_new_the_independent_harness_accepts(name, tmp_path):
    run = _tune(str(DATA / f"{name}.py"), "--small", "--out", str(tmp_path / "out"), state=tmp_path / "state")
    assert run.returncode == 0, run.stdout + run.stderr
    independent_check(DATA / f"{name}.py", tmp_path / "out" / "model_new.py")


@pytest.mark.slow
def test_tune_kernel_cli_uncovered_problem_exits_2_with_one_line(tmp_path):
    run = _tune(str(DATA / "33_BatchNorm.py"), "--small", "--out", str(tmp_path / "out"), state=tmp_path / "state")
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() + run.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "LLM" in errors[0] and "Traceback" not in run.stderr
    assert not (tmp_path / "out" / "model_new.py").exists()


def _inline_problem(tmp_path: Path, forward: str, shapes: list[tuple], args: str = "a, b") -> Path:
    path = tmp_path / f"inline_{next(_ids)}.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\n\n\nclass Model(nn.Module):\n"
        f"    def forward(self, {args}):\n        return {forward}\n\n\n"
        f"def get_inputs():\n    return [torch.randn(*s) for s in {shapes!r}]\n\n\nget_small_inputs = get_inputs\n\n\n"
        "def get_init_inputs():\n    return []\n")
    return path


@pytest.mark.parametrize(("spec", "shapes"), [
    ("ij,jk->ik", [(6, 8), (8, 5)]),
    ("bij,bjk->bik", [(2, 6, 8), (2, 8, 5)]),
    ("ik,jk->ij", [(6, 8), (5, 8)]),
    ("ki,kj->ij", [(8, 6), (8, 5)]),
])
def test_matmul_shaped_einsum_is_a_matmul(spec, shapes, tmp_path):
    path = _inline_problem(tmp_path, f"torch.einsum({spec!r}, a, b)", shapes)
    plan = plan_kernel(path, small=True)
    assert not isinstance(plan, NeedsLLM), plan.reason
    out = tmp_path / "einsum_new.py"
    out.write_text(plan.render(plan.default_config()))
    independent_check(path, out)


@pytest.mark.parametrize(("spec", "shapes"), [
    ("ij,jk->ki", [(6, 8), (8, 5)]),  # transposed output
    ("ij,ij->ij", [(6, 8), (6, 8)]),  # no contraction
    ("ij,ij->", [(6, 8), (6, 8)]),  # two contracted indices
    ("bij,cjk->bcik", [(2, 6, 8), (3, 8, 5)]),  # an outer product of batches
])
def test_other_einsums_get_needs_llm(spec, shapes, tmp_path):
    plan = plan_kernel(_inline_problem(tmp_path, f"torch.einsum({spec!r}, a, b)", shapes), small=True)
    assert isinstance(plan, NeedsLLM), f"{spec} was covered as {plan.pattern!r}"
    assert "einsum" in plan.reason and "\n" not in plan.reason


@pytest.mark.parametrize("forward", [
    "a.sum(-1).cumsum(0)",  # a scan of row sums
    "torch.softmax(a, dim=0) + torch.softmax(a, dim=1)",  # softmax over columns, then over rows
    "(a - a.mean(1, keepdim=True)).abs().amax(1).mean() * 2.0",  # a scalar from row maxima
])
def test_reduction_of_reduced_values_runs_in_two_passes(forward, tmp_path):
    path = _inline_problem(tmp_path, forward, [(6, 10)], args="a")
    plan = plan_kernel(path, small=True)
    assert not isinstance(plan, NeedsLLM), plan.reason
    assert plan.pattern.startswith("two passes")
    source = plan.render(plan.default_config())
    assert "_row_kernel_p1[" in source and "_row_kernel_p2[" in source
    out = tmp_path / "two_pass_new.py"
    out.write_text(source)
    independent_check(path, out)


@pytest.mark.parametrize(("forward", "words"), [
    ("torch.softmax(a @ b, dim=1) @ b.t()", "matmul"),  # a GEMM after the reduction (attention-shaped)
    ("(a @ b).sum(1) + (a @ b).amax(0).sum()", "matmul"),  # the GEMM reaches reductions over different dims
])
def test_gemm_then_reduction_near_misses_get_needs_llm(forward, words, tmp_path):
    plan = plan_kernel(_inline_problem(tmp_path, forward, [(6, 8), (8, 5)]), small=True)
    assert isinstance(plan, NeedsLLM), f"{forward} was covered as {plan.pattern!r}"
    assert words in plan.reason and "\n" not in plan.reason


def test_a_model_that_fails_on_its_own_inputs_is_a_problem_error_not_needs_llm(tmp_path):
    from tunesmith.kernels.generation import ProblemError

    path = _inline_problem(tmp_path, "a @ b", [(6, 8), (7, 5)])  # shapes that cannot multiply
    with pytest.raises(ProblemError, match=r"Model\(\.\.\.\)\(\*get_small_inputs\(\)\) failed: RuntimeError"):
        plan_kernel(path, small=True)
    broken = tmp_path / "broken_inputs.py"
    broken.write_text(path.read_text().replace("return [torch.randn(*s)", "return [torch.randn(-1, *s)"))
    with pytest.raises(ProblemError, match=r"get_small_inputs\(\) failed") as info:
        plan_kernel(broken, small=True)
    assert "\n" not in str(info.value)
