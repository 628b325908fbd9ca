# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/21_Sigmoid.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/21_Sigmoid.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs a Sigmoid activation.
    """
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

batch_size = 4096
dim = 393216

def get_inputs():
    x = torch.rand(batch_size, dim)
    return [x]

def get_small_inputs():
    return [torch.randn(4, 200)]

def get_init_inputs():
    return []
