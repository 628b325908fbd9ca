# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/4_Matrix_vector_multiplication_.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/4_Matrix_vector_multiplication_.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs matrix-vector multiplication (C = A * B).
    """
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A, B)

M = 256 * 8
K = 131072 * 8

def get_inputs():
    A = torch.rand(M, K)
    B = torch.rand(K, 1)
    return [A, B]

def get_small_inputs():
    return [torch.randn(24, 100), torch.randn(100, 1)]

def get_init_inputs():
    return []
