"""The problem set: KernelBench format, small shapes, and every covered problem's rendered ModelNew matches
its reference under the Triton interpreter (fresh random inputs, 1e-4 in fp32) for two configs."""

from __future__ import annotations

import ast
import functools
import importlib.util
import itertools
import math
import sys

import pytest
import torch

from tunesmith.kernels.generation import KernelPlan, NeedsLLM, plan_kernel
from tunesmith.kernels.generation.loading import load_module
from tunesmith.kernels.problems import list_problems

PROBLEMS = {p.stem: p for p in list_problems()}
NEEDS_LLM = {"attention", "conv2d", "gemm_swiglu"}
FAST = ["softmax", "matmul_irregular", "layer_norm_gelu", "argmax_dim1", "gemm_bias_relu", "cumsum"]
_ids = itertools.count()


@functools.cache
def plan_of(name: str):
    """One plan per problem for the whole module (tracing is the slow part; rendering is pure)."""
    return plan_kernel(PROBLEMS[name], small=True)


@pytest.fixture(autouse=True)
def interpreter(monkeypatch):
    """Triton must first be imported with TRITON_INTERPRET=1 (its library jit functions are made at import);
    meta-device arithmetic in the first test can import it, so every test here sets it."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def other_config(plan: KernelPlan) -> dict:
    """A config unlike the default: another choice for every parameter (smaller tiles, other warps)."""
    cfg = plan.default_config()
    for p in plan.space().params:
        grid = p.grid()
        cfg[p.name] = grid[1] if grid[0] == p.default and len(grid) > 1 else grid[0]
    if plan.template == "reduce":  # rows longer than the tile: the looped kernel, in about four chunks
        n = math.prod(plan.spec.shape_i[d] for d in plan.spec.dims)
        cfg["MAX_TILE"] = cfg["CHUNK"] = max(16, 1 << max(0, (n - 1).bit_length() - 2))
    assert not plan.space().violations(cfg)
    return cfg


def check_matches(problem, plan: KernelPlan, config: dict, tmp_path, seed: int = 123) -> float:
    """Render, import, build both models with one seed, compare on fresh small inputs; the max error."""
    src = plan.render(config)
    path = tmp_path / f"model_new_{next(_ids)}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    mod = load_module(problem)
    init = mod.get_init_inputs()
    torch.manual_seed(seed)
    ref = mod.Model(*init)
    torch.manual_seed(seed)
    new = gen.ModelNew(*init)
    assert [n for n, _ in ref.named_parameters()] == [n for n, _ in new.named_parameters()]
    torch.manual_seed(seed + 1)
    xs = mod.get_small_inputs()
    before = [x.clone() for x in xs]
    with torch.no_grad():
        want, got = ref(*xs), new(*xs)
    assert all(torch.equal(a, b) for a, b in zip(xs, before, strict=True)), "ModelNew changed its inputs"
    assert isinstance(got, torch.Tensor) and got.shape == want.shape and got.dtype == want.dtype
    err = (want.double() - got.double()).abs().max().item() if want.numel() else 0.0
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    return err


def test_the_set_has_at_least_25_problems_in_kernelbench_format():
    assert len(PROBLEMS) >= 25
    for name, path in PROBLEMS.items():
        mod = load_module(path)
        with torch.device("meta"):  # shapes only: the full inputs are large
            full, small = mod.get_inputs(), mod.get_small_inputs()
        assert [t.dim() for t in full] == [t.dim() for t in small], name
        assert sum(t.numel() for t in small) < 100_000, f"{name}: small inputs must stay small"
        assert isinstance(mod.get_init_inputs(), list)


def test_every_problem_plans_or_needs_an_llm_with_one_line():
    for name, _path in PROBLEMS.items():
        plan = plan_of(name)
        if name in NEEDS_LLM:
            assert isinstance(plan, NeedsLLM), name
            assert "\n" not in plan.reason and "LLM" in plan.reason
        else:
            assert isinstance(plan, KernelPlan), (name, getattr(plan, "reason", ""))
            assert plan.signature["ops"] and plan.signature["shapes"]


def test_needs_llm_names_the_op():
    assert "Conv2d" in plan_of("conv2d").reason
    assert "2 matmuls" in plan_of("attention").reason


def test_generated_source_imports_only_torch_triton_and_stdlib():
    allowed = {"torch", "triton"} | set(sys.stdlib_module_names)
    for name, _path in PROBLEMS.items():
        plan = plan_of(name)
        if isinstance(plan, NeedsLLM):
            continue
        tree = ast.parse(plan.render(plan.default_config()))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]} if not node.level else {"<relative>"}
            else:
                continue
            assert roots <= allowed, (name, roots)
        assert any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in tree.body), name


def test_generated_source_passes_the_evaluators_static_proof_of_work():
    from tunesmith.kernels.proof import static_findings

    for name, path in PROBLEMS.items():
        plan = plan_of(name)
        if isinstance(plan, KernelPlan):
            for cfg in (plan.default_config(), other_config(plan)):
                assert static_findings(plan.render(cfg), path.read_text()) == [], name


@pytest.mark.parametrize("name", FAST)
def test_fast_subset_matches_reference_for_two_configs(name, interpreter, tmp_path):
    plan = plan_of(name)
    for cfg in (plan.default_config(), other_config(plan)):
        check_matches(PROBLEMS[name], plan, cfg, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(PROBLEMS) - NEEDS_LLM - set(FAST)))
def test_every_covered_problem_matches_reference_for_two_configs(name, interpreter, tmp_path):
    plan = plan_of(name)
    for cfg in (plan.default_config(), other_config(plan)):
        check_matches(PROBLEMS[name], plan, cfg, tmp_path)
