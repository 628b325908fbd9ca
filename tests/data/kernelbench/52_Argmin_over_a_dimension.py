# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/52_Argmin_over_a_dimension.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/52_Argmin_over_a_dimension.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs a reduction over a specific dimension.
    """
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmin(x, dim=self.dim)

batch_size = 128
dim1 = 4096
dim2 = 4095

def get_inputs():
    x = torch.rand(batch_size, dim1, dim2)
    return [x]

def get_small_inputs():
    return [torch.randn(3, 17, 33)]

def get_init_inputs():
    return [1]
