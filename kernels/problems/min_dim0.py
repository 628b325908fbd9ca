"""Min over dimension 0 with amin."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.amin(x, dim=0)


def get_inputs():
    return [torch.randn(1024, 8192)]


def get_small_inputs():
    return [torch.randn(13, 10)]


def get_init_inputs():
    return []
