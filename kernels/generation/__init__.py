"""Kernel generation without an LLM: read a PyTorch reference's graph and render project-written Triton templates.

``plan_kernel(problem, small=False)`` traces a KernelBench-format problem (torch.fx, falling back to
torch.export), normalises it to a small op vocabulary and matches it, by what it computes, to the row
template (pointwise chains, row reductions, softmax, layer/RMS norm, scans) or the matmul template (with
fused prologues and epilogue); a reduction of reduced values, or a GEMM whose epilogue feeds a row reduction,
runs as two passes (``twostage``). It returns a ``KernelPlan`` (``space()``, ``default_config()``,
``render(config)`` -> model_new.py source) or ``NeedsLLM(reason=...)`` with one line.
"""

from .loading import ProblemError
from .plan import KernelPlan, NeedsLLM, plan_kernel

__all__ = ["KernelPlan", "NeedsLLM", "ProblemError", "plan_kernel"]
