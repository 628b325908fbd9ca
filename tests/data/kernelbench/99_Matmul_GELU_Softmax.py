# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level2/99_Matmul_GELU_Softmax.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level2/99_Matmul_GELU_Softmax.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A level-2 fusion problem.
    """
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        x = self.linear(x)
        x = torch.nn.functional.gelu(x)
        x = torch.nn.functional.softmax(x, dim=1)
        return x

batch_size = 128
in_features = 32768
out_features = 32768

def get_inputs():
    return [torch.rand(batch_size, 40)]

def get_small_inputs():
    return [torch.randn(8, 40)]

def get_init_inputs():
    return [40, 24]
