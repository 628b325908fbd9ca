# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/10_3D_tensor_matrix_multiplication.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/10_3D_tensor_matrix_multiplication.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Performs 3D tensor-matrix multiplication.
    """
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A, B)


N, M, K, L = 16, 1024, 2048, 768


def get_inputs():
    return [torch.rand(N, M, K), torch.rand(K, L)]


def get_small_inputs():
    return [torch.randn(3, 20, 24), torch.randn(24, 36)]


def get_init_inputs():
    return []
