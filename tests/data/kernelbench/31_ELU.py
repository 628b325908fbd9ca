# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/31_ELU.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/31_ELU.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """
    Simple model that performs an ELU activation.
    """
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, alpha=self.alpha)

batch_size = 4096
dim = 393216

def get_inputs():
    x = torch.rand(batch_size, dim)
    return [x]

def get_small_inputs():
    return [torch.randn(4, 200)]

def get_init_inputs():
    return [1.0]
