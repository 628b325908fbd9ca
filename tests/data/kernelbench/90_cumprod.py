# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/90_cumprod.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/90_cumprod.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A model that performs a scan along a dimension.
    """
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return torch.cumprod(x, dim=self.dim)

batch_size = 32768
input_shape = (32768,)
dim = 1

def get_inputs():
    return [torch.rand(batch_size, *input_shape)]

def get_small_inputs():
    return [torch.rand(4, 100) + 0.5]

def get_init_inputs():
    return [dim]
