"""Mean over the last dimension."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x.mean(-1)


def get_inputs():
    return [torch.randn(64, 2048, 1024)]


def get_small_inputs():
    return [torch.randn(4, 5, 29)]


def get_init_inputs():
    return []
