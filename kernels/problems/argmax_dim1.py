"""Argmax over dimension 1 of a 3-D tensor."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.argmax(x, dim=1)


def get_inputs():
    return [torch.randn(16, 256, 256)]


def get_small_inputs():
    return [torch.randn(3, 17, 5)]


def get_init_inputs():
    return []
