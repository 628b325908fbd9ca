"""Product reduction over dimension 1."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.prod(x, dim=1)


def get_inputs():
    return [torch.rand(16, 256, 256) + 0.5]


def get_small_inputs():
    return [torch.rand(3, 9, 7) + 0.5]


def get_init_inputs():
    return []
