# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level2/14_Gemm_Divide_Sum_Scaling.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level2/14_Gemm_Divide_Sum_Scaling.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A level-2 fusion problem.
    """
    def __init__(self, input_size, hidden_size, scaling_factor):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden_size, input_size))
        self.scaling_factor = scaling_factor

    def forward(self, x):
        x = torch.matmul(x, self.weight.T)
        x = x / 2
        x = torch.sum(x, dim=1, keepdim=True)
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
    return [40, 24, 1.5]
