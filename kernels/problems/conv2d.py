"""A 3x3 2-D convolution (no template covers it: it needs an LLM)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=1)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(16, 64, 128, 128)]


def get_small_inputs():
    return [torch.randn(1, 64, 6, 6)]


def get_init_inputs():
    return [64, 64, 3]
