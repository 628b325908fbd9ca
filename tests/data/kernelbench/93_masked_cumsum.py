# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/93_masked_cumsum.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/93_masked_cumsum.py); written in its style,
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

    def forward(self, x, mask):
        return torch.cumsum(x * mask, dim=self.dim)

batch_size = 32768
input_shape = (32768,)
dim = 1

def get_inputs():
    return [torch.rand(batch_size, *input_shape), torch.randint(0, 2, (batch_size, *input_shape)).bool()]

def get_small_inputs():
    return [torch.randn(4, 100), torch.randint(0, 2, (4, 100)).bool()]

def get_init_inputs():
    return [dim]
