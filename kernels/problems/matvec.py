"""Matrix-vector product y = A @ x."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, x):
        return torch.matmul(A, x)


def get_inputs():
    return [torch.randn(4096, 8192), torch.randn(8192)]


def get_small_inputs():
    return [torch.randn(40, 36), torch.randn(36)]


def get_init_inputs():
    return []
