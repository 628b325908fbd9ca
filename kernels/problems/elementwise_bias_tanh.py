"""Per-channel scale and bias broadcast over rows, then tanh."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(channels))
        self.bias = nn.Parameter(torch.randn(channels))

    def forward(self, x):
        return torch.tanh(x * self.scale + self.bias)


def get_inputs():
    return [torch.randn(16384, 2048)]


def get_small_inputs():
    return [torch.randn(6, 2048)]


def get_init_inputs():
    return [2048]
