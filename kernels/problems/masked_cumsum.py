"""Cumulative sum of x where a boolean mask is set."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, mask):
        return torch.cumsum(x * mask, dim=1)


def get_inputs():
    return [torch.randn(128, 4000), torch.randint(0, 2, (128, 4000)).bool()]


def get_small_inputs():
    return [torch.randn(4, 29), torch.randint(0, 2, (4, 29)).bool()]


def get_init_inputs():
    return []
