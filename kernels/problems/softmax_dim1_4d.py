"""Softmax over the channel dimension of an NCHW tensor (not the last dim)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x.softmax(dim=1)


def get_inputs():
    return [torch.randn(16, 64, 64, 64)]


def get_small_inputs():
    return [torch.randn(2, 5, 3, 4)]


def get_init_inputs():
    return []
