# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/35_GroupNorm_.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/35_GroupNorm_.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs Group Normalization.
    """
    def __init__(self, num_features: int, num_groups: int):
        super().__init__()
        self.gn = nn.GroupNorm(num_groups=num_groups, num_channels=num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gn(x)


batch_size = 112
features = 64
num_groups = 8


def get_inputs():
    return [torch.rand(batch_size, features, 512, 512)]


def get_small_inputs():
    return [torch.randn(2, features, 4, 5)]


def get_init_inputs():
    return [features, num_groups]
