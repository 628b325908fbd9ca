"""SwiGLU feed-forward gate: silu(x @ W1^T) * (x @ W3^T) needs two GEMMs."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x):
        return F.silu(self.w1(x)) * self.w3(x)


def get_inputs():
    return [torch.randn(2048, 1024)]


def get_small_inputs():
    return [torch.randn(5, 1024)]


def get_init_inputs():
    return [1024, 256]
