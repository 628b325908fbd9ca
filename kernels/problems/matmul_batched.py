"""Batched matrix multiplication with torch.bmm."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.bmm(A, B)


def get_inputs():
    return [torch.randn(32, 256, 512), torch.randn(32, 512, 384)]


def get_small_inputs():
    return [torch.randn(3, 16, 24), torch.randn(3, 24, 20)]


def get_init_inputs():
    return []
