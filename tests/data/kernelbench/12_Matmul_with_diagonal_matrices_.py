# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/12_Matmul_with_diagonal_matrices_.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/12_Matmul_with_diagonal_matrices_.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs a matrix multiplication of a diagonal matrix with another matrix.
    C = diag(A) * B
    """
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.diag(A) @ B

M = 4096
N = 4096

def get_inputs():
    A = torch.rand(N)
    B = torch.rand(N, M)
    return A, B

def get_small_inputs():
    return [torch.randn(32), torch.randn(32, 48)]

def get_init_inputs():
    return []
