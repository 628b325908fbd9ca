"""`tune kernel` through the real console script, by subprocess and on a pseudo-terminal.

On this CPU machine a covered problem that is not in the project's set is generated, verified under the
Triton interpreter, stored and written to model_new.py, which an independent check (this test's own loop
over fresh inputs, in a fresh process) finds correct; a second run is answered from the library; a pattern
no template covers, without an LLM, is one "needs an LLM" line with exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

from tunesmith.kernels.library import KernelLibrary, hardware_fingerprint

TUNE = str(Path(sys.executable).with_name("tune"))
ENV = {**os.environ, "LANGSMITH_TRACING": "false", "TUNESMITH_LLM_BASE_URL": "", "OPENAI_API_KEY": "",
       "COLUMNS": "160"}

NORM = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    """RMS norm written out as primitive ops, with a ReLU epilogue (not in the project's problem set)."""

    def __init__(self, features, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(features))
        self.eps = eps

    def forward(self, x):
        scale = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return torch.relu(x * scale * self.weight)


def get_inputs():
    return [torch.randn(6, 40)]


def get_init_inputs():
    return [40, 1e-6]
'''

CONV = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(1, 3, 8, 8)]


def get_init_inputs():
    return []
'''

# An independent check of the written model_new.py: fresh seeds and shapes the evaluator never used.
CHECK = textwrap.dedent('''
    import importlib.util, sys, torch
    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); return mod
    ref, new = load("ref", sys.argv[1]), load("new", sys.argv[2])
    init = ref.get_init_inputs()
    torch.manual_seed(7); model = ref.Model(*init)
    torch.manual_seed(7); model_new = new.ModelNew(*init)
    worst = 0.0
    for seed in (101, 202, 303):
        torch.manual_seed(seed)
        xs = [x * 3 - 1 if torch.is_tensor(x) else x for x in ref.get_inputs()]
        copies = [x.clone() if torch.is_tensor(x) else x for x in xs]
        want, got = model(*xs), model_new(*copies)
        assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
        worst = max(worst, (got - want).abs().max().item())
    print("max_abs_err", worst)
    assert worst < 1e-4, worst
''')


def tune(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TUNE, "kernel", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_generate_verify_store_and_answer_from_the_library(tmp_path: Path) -> None:
    problem = tmp_path / "my_rmsnorm.py"
    problem.write_text(NORM)
    res = tune(str(problem), "--out", "out", "--state-dir", "state", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pattern: RMS norm" in res.stdout
    assert "timing unavailable: no GPU" in res.stdout and "no speedup is claimed" in res.stdout
    assert "stored in the kernel library as #1" in res.stdout
    source = (tmp_path / "out" / "model_new.py").read_text()
    assert "@triton.jit" in source and "class ModelNew" in source
    check = subprocess.run([sys.executable, "-c", CHECK, str(problem), str(tmp_path / "out" / "model_new.py")],
                           env={**ENV, "TRITON_INTERPRET": "1"}, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    with KernelLibrary(tmp_path / "state" / "kernels.db") as lib:
        (rec,) = lib.records()
    assert rec.strict_ok and rec.evidence["status"] == "ok" and rec.evidence["timing"] is None
    assert rec.hardware["triton_interpret"] is True and rec.source == source and rec.speedup_compile is None
    again = tune("generate", str(problem), "--state-dir", "state", cwd=tmp_path, timeout=120)
    assert again.returncode == 0 and "answered from the kernel library: kernel #1" in again.stdout, again.stdout
    assert "study" not in again.stdout  # no new search


@pytest.mark.slow  # traces the reference in a fresh process (~10 s here); the pty test below is the quick one
def test_uncovered_pattern_without_an_llm_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "conv.py").write_text(CONV)
    res = tune("conv.py", "--llm", "off", "--state-dir", "state", cwd=tmp_path, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "an LLM is needed" in lines[0]
    assert "Traceback" not in res.stdout + res.stderr
    assert not (tmp_path / "state" / "kernels.db").exists()


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(NORM)
    for args, needle in ((["missing.py"], "does not exist"), (["p.py", "--budget", "0"], "--budget 0"),
                         (["p.py", "--llm", "maybe"], "not a mode"), (["list"], "no kernel library"),
                         (["show", "x"], "x")):
        res = tune(*args, "--state-dir", "state", cwd=tmp_path, timeout=120)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, (args, res.stderr)


def _seed_library(state: Path) -> int:
    hardware, _ = hardware_fingerprint(interpreted=True)
    with KernelLibrary(state / "kernels.db") as lib:
        rec = lib.add(problem="softmax", pattern="softmax over dim 1, fused", origin="template",
                      signature={"ops": ["amax", "sub", "exp", "sum", "div"], "shapes": [[7, 45]], "dtypes": ["float32"]},
                      hardware=hardware, source="import torch\nimport triton\n\nclass ModelNew: ...\n",
                      config={"ROWS": 1},
                      evidence={"status": "ok", "strict_ok": True, "loose_ok": True, "max_abs_err": 1.2e-7,
                                "timing": None, "study": "kernel-softmax-x", "trial": 1,
                                "timing_note": "timing unavailable: no GPU (correctness checked under the Triton interpreter)"})
    return rec.id


def test_list_and_show_on_a_terminal(tmp_path: Path) -> None:
    kid = _seed_library(tmp_path / "state")
    child = pexpect.spawn(TUNE, ["kernel", "list", "--state-dir", "state"], cwd=str(tmp_path), env=ENV,
                          encoding="utf-8", timeout=60, dimensions=(40, 160))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "softmax" in child.before and "strict" in child.before and "untimed" in child.before
    child = pexpect.spawn(TUNE, ["kernel", "show", str(kid), "--state-dir", "state"], cwd=str(tmp_path), env=ENV,
                          encoding="utf-8", timeout=60, dimensions=(40, 160))
    child.expect(pexpect.EOF)
    child.close()
    text = child.before
    assert child.exitstatus == 0, text
    assert f"kernel #{kid}: softmax" in text and "Triton interpreter" in text and "class ModelNew" in text
    assert "timing unavailable" in text and json.dumps({"ROWS": 1}) in text


def test_needs_an_llm_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "conv.py").write_text(CONV)
    child = pexpect.spawn(TUNE, ["kernel", "conv.py", "--llm", "off", "--state-dir", "state"], cwd=str(tmp_path),
                          env=ENV, encoding="utf-8", timeout=120, dimensions=(40, 200))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2, child.before
    errors = [ln for ln in child.before.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "an LLM is needed" in errors[0] and "Traceback" not in child.before
