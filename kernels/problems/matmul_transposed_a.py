"""C = A.T @ B with A stored as (K, M)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A.T, B)


def get_inputs():
    return [torch.randn(1024, 2048), torch.randn(1024, 1536)]


def get_small_inputs():
    return [torch.randn(24, 20), torch.randn(24, 28)]


def get_init_inputs():
    return []
