# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/100_HingeLoss.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/100_HingeLoss.py); written in its style,
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
        return torch.mean(torch.clamp(1 - predictions * targets, min=0))

batch_size = 32768
input_shape = (32768,)
dim = 1

def get_inputs():
    return [torch.rand(batch_size, *input_shape), torch.randint(0, 2, (batch_size,)).float() * 2 - 1]

def get_small_inputs():
    return [torch.randn(16, 16), torch.randint(0, 2, (16,)).float() * 2 - 1]

def get_init_inputs():
    return []
