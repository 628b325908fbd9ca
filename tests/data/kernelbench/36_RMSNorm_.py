# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/36_RMSNorm_.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/36_RMSNorm_.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs RMS normalization written out.
    """
    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(torch.mean(x ** 2, dim=1, keepdim=True) + self.eps)

batch_size = 4096
dim = 393216

def get_inputs():
    x = torch.rand(batch_size, dim)
    return [x]

def get_small_inputs():
    return [torch.randn(4, 200)]

def get_init_inputs():
    return [64]
