# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level2/45_Gemm_Sigmoid_Sum_LogSumExp.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level2/45_Gemm_Sigmoid_Sum_LogSumExp.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A level-2 fusion problem.
    """
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.linear1 = nn.Linear(input_size, hidden_size)

    def forward(self, x):
        x = self.linear1(x)
        x = torch.sigmoid(x)
        x = torch.sum(x, dim=1)
        x = torch.logsumexp(x, dim=0)
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
