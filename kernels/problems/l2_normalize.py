"""x / ||x||_2 along dim 1 with torch.norm (keepdim)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x / torch.norm(x, p=2, dim=1, keepdim=True)


def get_inputs():
    return [torch.randn(16, 16384)]


def get_small_inputs():
    return [torch.randn(5, 43)]


def get_init_inputs():
    return []
