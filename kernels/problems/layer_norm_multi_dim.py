"""nn.LayerNorm over the three trailing dims (features, height, width), as KernelBench writes it."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, normalized_shape):
        super().__init__()
        self.ln = nn.LayerNorm(normalized_shape=normalized_shape)

    def forward(self, x):
        return self.ln(x)


def get_inputs():
    return [torch.randn(16, 8, 64, 64)]


def get_small_inputs():
    return [torch.randn(2, 8, 64, 64)]


def get_init_inputs():
    return [(8, 64, 64)]
