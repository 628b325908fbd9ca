"""Fused LayerNorm forward in Triton (normalise, scale, shift in one kernel), looped over each row.

tunesmith tunes ``BLOCK_SIZE``, ``num_warps`` and ``num_stages`` of :func:`layer_norm` against
:func:`reference` (``torch.nn.functional.layer_norm``) on inputs from :func:`make_inputs`.

One program per row: pass 1 accumulates the sum and the sum of squared deviations from a first-block
shift (numerically safer than raw squares), pass 2 writes ``(x - mean) * rstd * weight + bias``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

EPS = 1e-5


@triton.jit
def _layer_norm_kernel(out_ptr, x_ptr, w_ptr, b_ptr, stride, n_cols, eps, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride
    out_row = out_ptr + row * stride
    offs = tl.arange(0, BLOCK_SIZE)
    # Shift by the row's first element so the variance does not cancel catastrophically.
    shift = tl.load(x_row).to(tl.float32)
    acc = tl.zeros([BLOCK_SIZE], tl.float32)
    acc2 = tl.zeros([BLOCK_SIZE], tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + offs
        mask = cols < n_cols
        d = tl.where(mask, tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32) - shift, 0.0)
        acc += d
        acc2 += d * d
    mean_d = tl.sum(acc, axis=0) / n_cols
    var = tl.maximum(tl.sum(acc2, axis=0) / n_cols - mean_d * mean_d, 0.0)
    mean = shift + mean_d
    rstd = 1.0 / tl.sqrt(var + eps)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + offs
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(b_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        y = (x - mean) * rstd * w + b
        tl.store(out_row + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    BLOCK_SIZE: int,
    num_warps: int,
    num_stages: int,
) -> torch.Tensor:
    """LayerNorm over the last dimension of a contiguous 2-D tensor; returns a new tensor."""
    if x.dim() != 2 or not x.is_contiguous():
        raise ValueError("layer_norm expects a contiguous 2-D tensor")
    n_rows, n_cols = x.shape
    out = torch.empty_like(x)
    _layer_norm_kernel[(n_rows,)](
        out, x, weight, bias, x.stride(0), n_cols, EPS,
        BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps, num_stages=num_stages,
    )  # fmt: skip
    return out


def reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """What :func:`layer_norm` must compute."""
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, EPS)


def make_inputs(seed: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, weight, bias in fp32: 8192 x 4096 on a GPU; 11 x 200 under the Triton interpreter (device "cpu")."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    rows, cols = (8192, 4096) if device != "cpu" else (11, 200)
    x = torch.randn(rows, cols, generator=gen) * 2.0 + 0.5
    weight = 1.0 + 0.1 * torch.randn(cols, generator=gen)
    bias = 0.1 * torch.randn(cols, generator=gen)
    return x.to(device), weight.to(device), bias.to(device)
