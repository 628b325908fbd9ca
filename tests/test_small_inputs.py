"""Small shapes derived for real KernelBench files that declare no get_small_inputs().

The files under tests/data/kernelbench_raw are KernelBench problems as published (full-size module
constants such as ``batch_size = 4096; dim = 393216``, no ``get_small_inputs``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tunesmith.kernels.reference import build_reference, load_problem
from tunesmith.kernels.small_inputs import MAX_NUMEL, ensure_small_inputs
from tunesmith.runners.errors import JobError

RAW = Path(__file__).parent / "data" / "kernelbench_raw"
FILES = sorted(RAW.glob("*.py"))


def _derived(path: Path):
    module = load_problem(path)
    note = ensure_small_inputs(module, path.name)
    torch.manual_seed(0)
    return module, note, list(module.get_small_inputs()), list(module.get_init_inputs())


def test_the_raw_files_declare_no_small_inputs_and_are_huge():
    assert len(FILES) == 5
    for path in FILES:
        module = load_problem(path)
        assert not hasattr(module, "get_small_inputs")
        with torch.device("meta"):
            assert sum(t.numel() for t in module.get_inputs()) > 10**7, path.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_derived_inputs_are_small_consistent_and_deterministic(path):
    module, note, inputs, init = _derived(path)
    assert note.startswith("no get_small_inputs(): derived small shapes ")
    assert 0 < sum(t.numel() for t in inputs) <= MAX_NUMEL
    assert all(2 <= d <= 200 for t in inputs for d in t.shape)
    with torch.no_grad():
        out = module.Model(*init)(*inputs)  # consistent with the (also derived) init inputs
    assert isinstance(out, torch.Tensor)
    _, note2, inputs2, init2 = _derived(path)  # a fresh load derives the same shapes
    assert note2 == note and init2 == init
    assert [t.shape for t in inputs2] == [t.shape for t in inputs]


def test_equal_dims_stay_equal_and_small_constants_are_kept():
    _, note, (x,), init = _derived(RAW / "40_LayerNorm.py")
    assert note.endswith("dim1 256->37, dim2 256->37, features 64->23")
    assert x.shape == (16, 23, 37, 37) and init == [(23, 37, 37)]
    _, note, (x,), init = _derived(RAW / "47_Sum_reduction_over_a_dimension.py")
    assert init == [1] and "reduce_dim" not in note
    assert x.shape == (23, 47, 37)  # order kept: 128 < 4095 < 4096 -> 23 < 37 < 47
    _, note, (a, b), _ = _derived(RAW / "2_Standard_matrix_multiplication_.py")
    assert a.shape[1] == b.shape[0] and note.endswith("K 8192->47, M 2048->23, N 4096->37")


def test_the_full_size_is_never_allocated():
    """Under a data limit far below the full ReLU input (6 GiB) the derivation still works."""
    script = textwrap.dedent(f"""
        import resource, sys, torch
        from tunesmith.kernels.reference import load_problem
        from tunesmith.kernels.small_inputs import ensure_small_inputs
        module = load_problem({str(RAW / "19_ReLU.py")!r})
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[5]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_DATA, (used + (512 << 20), resource.RLIM_INFINITY))
        try:
            torch.empty(64 << 20)  # 256 MiB fits
            torch.empty(1 << 30)  # 4 GiB does not: the limit bites
            print("limit-not-enforced")
        except RuntimeError:
            pass
        print(ensure_small_inputs(module))
        print(tuple(module.get_small_inputs()[0].shape))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "limit-not-enforced" not in proc.stdout
    assert "batch_size 4096->23, dim 393216->37" in proc.stdout and "(23, 37)" in proc.stdout


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.py"
    path.write_text("import torch\nimport torch.nn as nn\n\n" + textwrap.dedent(body))
    return path


def test_a_shrink_that_breaks_divisibility_falls_back_to_a_milder_one(tmp_path):
    path = _write(tmp_path, """
        class Model(nn.Module):
            def __init__(self, heads):
                super().__init__()
                self.heads = heads
            def forward(self, x):
                b, d = x.shape
                return x.view(b, self.heads, d // self.heads).softmax(-1).view(b, d)
        batch_size = 4096
        heads = 8
        dim = 65536
        def get_inputs():
            return [torch.rand(batch_size, dim)]
        def get_init_inputs():
            return [heads]
    """)
    module, note, (x,), init = _derived(path)
    assert init == [8] and x.shape[1] % 8 == 0 and x.numel() <= MAX_NUMEL
    assert "dim 65536->" in note


def test_unshrinkable_constants_are_a_one_line_error(tmp_path):
    path = _write(tmp_path, """
        class Model(nn.Module):
            def forward(self, x):
                assert x.shape[1] == 393216, "fixed width"
                return x.relu()
        batch_size = 4096
        dim = 393216
        def get_inputs():
            return [torch.rand(batch_size, dim)]
        def get_init_inputs():
            return []
    """)
    with pytest.raises(JobError) as err:
        ensure_small_inputs(load_problem(path), "p.py")
    msg = str(err.value)
    assert "\n" not in msg and "batch_size, dim" in msg and "get_small_inputs()" in msg


def test_declared_small_inputs_are_used_untouched(tmp_path):
    path = _write(tmp_path, """
        class Model(nn.Module):
            def forward(self, x):
                return x.relu()
        dim = 4096
        def get_inputs():
            return [torch.rand(dim, dim)]
        def get_small_inputs():
            return [torch.rand(5, 7)]
        def get_init_inputs():
            return []
    """)
    module = load_problem(path)
    assert ensure_small_inputs(module) == "" and module.dim == 4096
    assert build_reference(path, small=True).cases[0].inputs[0].shape == (5, 7)


def test_the_trusted_reference_uses_the_derived_shapes():
    ref = build_reference(RAW / "23_Softmax.py", small=True)
    assert all(c.inputs[0].shape == (23, 37) for c in ref.cases)


def _independent_check(problem: Path, model_new: Path) -> None:
    """Seeded Model vs ModelNew on fresh derived-shape inputs (seeds the evaluator does not use)."""
    module = load_problem(problem)
    ensure_small_inputs(module)
    spec = importlib.util.spec_from_file_location("model_new_under_test", model_new)
    new = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(new)
    init = list(module.get_init_inputs())
    torch.manual_seed(7)
    ref = module.Model(*init).eval()
    torch.manual_seed(7)
    cand = new.ModelNew(*init).eval()
    for seed in (123, 456):
        torch.manual_seed(seed)
        xs = [t * 3 - 1 for t in module.get_small_inputs()]
        with torch.no_grad():
            torch.testing.assert_close(cand(*xs), ref(*xs), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["19_ReLU", "23_Softmax"])  # the sum took 157 s here (it passes)
def test_tune_kernel_on_a_raw_kernelbench_file(tmp_path, monkeypatch, name):
    problem = RAW / f"{name}.py"
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(["tune", "kernel", str(problem), "--out", str(tmp_path / "out"), "--llm", "off",
                           "--state-dir", str(tmp_path / "state")],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "using small shapes" in proc.stdout and "no get_small_inputs(): derived small shapes" in proc.stdout
    assert "verified: correct at strict tolerance" in proc.stdout
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    _independent_check(problem, tmp_path / "out" / "model_new.py")
