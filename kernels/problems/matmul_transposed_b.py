"""C = A @ B^T with B stored as (N, K), as in attention scores."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return A @ B.transpose(-2, -1)


def get_inputs():
    return [torch.randn(8, 512, 128), torch.randn(8, 384, 128)]


def get_small_inputs():
    return [torch.randn(2, 12, 16), torch.randn(2, 20, 16)]


def get_init_inputs():
    return []
