# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/88_MinGPTNewGelu.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/88_MinGPTNewGelu.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.
import math

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs the GELU of Google BERT / OpenAI GPT (minGPT).
    """
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

batch_size = 4096
dim = 393216

def get_inputs():
    x = torch.rand(batch_size, dim)
    return [x]

def get_small_inputs():
    return [torch.randn(4, 200)]

def get_init_inputs():
    return []
