"""Row softmax in Triton: one program per row, an online (looped) pass so BLOCK_SIZE may be shorter than a row.

tunesmith tunes ``BLOCK_SIZE``, ``num_warps`` and ``num_stages`` of :func:`softmax` against
:func:`reference` on inputs from :func:`make_inputs`.

Pass 1 walks the row in BLOCK_SIZE chunks keeping a running maximum ``m`` and a running sum of
``exp(x - m)`` rescaled whenever ``m`` grows (the online-softmax recurrence); pass 2 walks the row again
and writes ``exp(x - m) / sum``. A BLOCK_SIZE at least the row length makes both passes one iteration.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _softmax_kernel(out_ptr, in_ptr, in_row_stride, out_row_stride, n_cols, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    in_row = in_ptr + row * in_row_stride
    out_row = out_ptr + row * out_row_stride
    offs = tl.arange(0, BLOCK_SIZE)

    # Pass 1: running maximum and rescaled running sum, one lane-wise accumulator per column slot.
    m = tl.full([BLOCK_SIZE], float("-inf"), tl.float32)
    s = tl.zeros([BLOCK_SIZE], tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + offs
        x = tl.load(in_row + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, x)
        # A lane that has seen only -inf (masked tail) subtracts 0 instead, so exp gives 0, never nan.
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        s = s * tl.exp(m - m_safe) + tl.exp(x - m_safe)
        m = m_new
    row_max = tl.max(m, axis=0)
    row_sum = tl.sum(s * tl.exp(m - row_max), axis=0)

    # Pass 2: normalise and store.
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + offs
        mask = cols < n_cols
        x = tl.load(in_row + cols, mask=mask, other=float("-inf")).to(tl.float32)
        y = tl.exp(x - row_max) / row_sum
        tl.store(out_row + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor, *, BLOCK_SIZE: int, num_warps: int, num_stages: int) -> torch.Tensor:
    """Softmax over the last dimension of a 2-D tensor; returns a new tensor of the same dtype."""
    if x.dim() != 2:
        raise ValueError(f"softmax expects a 2-D tensor, got {x.dim()}-D")
    n_rows, n_cols = x.shape
    out = torch.empty_like(x)
    _softmax_kernel[(n_rows,)](
        out,
        x,
        x.stride(0),
        out.stride(0),
        n_cols,
        BLOCK_SIZE=BLOCK_SIZE,
        num_warps=num_warps,
        num_stages=num_stages,
    )
    return out


def reference(x: torch.Tensor) -> torch.Tensor:
    """What :func:`softmax` must compute: PyTorch's softmax over the last dimension."""
    return torch.softmax(x, dim=-1)


def make_inputs(seed: int, device: str) -> tuple[torch.Tensor]:
    """One fp32 matrix: 4096 x 4096 on a GPU; a small 13 x 300 under the Triton interpreter (device "cpu").

    The odd shape makes every BLOCK_SIZE below 512 loop and every block mask its tail.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    shape = (4096, 4096) if device != "cpu" else (13, 300)
    return (torch.randn(shape, generator=gen).mul_(3.0).to(device),)
