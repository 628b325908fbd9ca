# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/94_MSELoss.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/94_MSELoss.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A model that computes a loss.
    """
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        return torch.mean((predictions - targets) ** 2)

batch_size = 32768
input_shape = (32768,)
dim = 1

def get_inputs():
    return [torch.rand(batch_size, *input_shape) * 2, torch.rand(batch_size, *input_shape)]

def get_small_inputs():
    return [torch.randn(8, 64), torch.randn(8, 64)]

def get_init_inputs():
    return []
