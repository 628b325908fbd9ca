# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/18_Matmul_with_transposed_both.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/18_Matmul_with_transposed_both.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs a single matrix multiplication (C = A.T * B.T)
    """
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A.T, B.T)

M = 1024 * 2
K = 4096 * 2
N = 2048 * 2

def get_inputs():
    A = torch.rand(K, M)
    B = torch.rand(N, K)
    return [A, B]

def get_small_inputs():
    return [torch.randn(40, 24), torch.randn(36, 40)]

def get_init_inputs():
    return []
