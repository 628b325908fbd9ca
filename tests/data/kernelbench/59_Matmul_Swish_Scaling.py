# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level2/59_Matmul_Swish_Scaling.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level2/59_Matmul_Swish_Scaling.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A level-2 fusion problem.
    """
    def __init__(self, in_features, out_features, scaling_factor):
        super().__init__()
        self.matmul = nn.Linear(in_features, out_features)
        self.scaling_factor = scaling_factor

    def forward(self, x):
        x = self.matmul(x)
        x = x * torch.sigmoid(x)
        x = x * self.scaling_factor
        return x

batch_size = 128
in_features = 32768
out_features = 32768

def get_inputs():
    return [torch.rand(batch_size, 40)]

def get_small_inputs():
    return [torch.randn(8, 40)]

def get_init_inputs():
    return [40, 24, 2.0]
