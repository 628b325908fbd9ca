# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level2/29_Matmul_Mish_Mish.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level2/29_Matmul_Mish_Mish.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs a matrix multiplication, applies Mish, and applies Mish again.
    """
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        x = self.linear(x)
        x = torch.nn.functional.mish(x)
        x = torch.nn.functional.mish(x)
        return x


def get_inputs():
    return [torch.rand(1024, 8192)]


def get_small_inputs():
    return [torch.randn(8, 40)]


def get_init_inputs():
    return [40, 24]
