# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/40_LayerNorm.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/40_LayerNorm.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs Layer Normalization.
    """
    def __init__(self, normalized_shape: tuple):
        super().__init__()
        self.ln = nn.LayerNorm(normalized_shape=normalized_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x)

batch_size = 16
features = 64
dim1 = 256
dim2 = 256

def get_inputs():
    x = torch.rand(batch_size, features, 4, 4)
    return [x]

def get_small_inputs():
    return [torch.randn(2, 64, 4, 4)]

def get_init_inputs():
    # KernelBench normalises over (64, 256, 256); the parameters' shape follows get_init_inputs, so this copy
    # uses (64, 4, 4) for both sizes to let the small inputs fit the interpreter.
    return [(features, 4, 4)]
