# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/34_InstanceNorm.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/34_InstanceNorm.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs Instance Normalization.
    """
    def __init__(self, num_features: int):
        super().__init__()
        self.inorm = nn.InstanceNorm2d(num_features=num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inorm(x)

batch_size = 112
features = 64
dim1 = 512
dim2 = 512

def get_inputs():
    x = torch.rand(batch_size, features, dim1, dim2)
    return [x]

def get_small_inputs():
    return [torch.randn(2, 64, 5, 6)]

def get_init_inputs():
    return [features]
