# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/11_4D_tensor_matrix_multiplication.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/11_4D_tensor_matrix_multiplication.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Performs 4D tensor-matrix multiplication: C[b, i, j, k] = sum_l A[b, i, j, l] * B[l, k].
    """
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.einsum("bijl,lk->bijk", A, B)


b, i, j, l, k = 16, 256, 512, 256, 768


def get_inputs():
    return [torch.rand(b, i, j, l), torch.rand(l, k)]


def get_small_inputs():
    return [torch.randn(2, 3, 4, 8), torch.randn(8, 5)]


def get_init_inputs():
    return []
