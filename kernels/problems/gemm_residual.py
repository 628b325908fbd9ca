"""x @ W + b + residual: a GEMM with a bias and a residual add fused."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features) * 0.02)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x, residual):
        return x @ self.weight + self.bias + residual


def get_inputs():
    return [torch.randn(4096, 1024), torch.randn(4096, 512)]


def get_small_inputs():
    return [torch.randn(9, 1024), torch.randn(9, 512)]


def get_init_inputs():
    return [1024, 512]
