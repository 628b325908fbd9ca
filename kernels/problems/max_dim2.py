"""Max over dimension 2 (values of torch.max with a dim)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.max(x, dim=2)[0]


def get_inputs():
    return [torch.randn(16, 256, 256)]


def get_small_inputs():
    return [torch.randn(3, 4, 21)]


def get_init_inputs():
    return []
