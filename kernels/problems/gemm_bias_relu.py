"""nn.Linear followed by ReLU: a GEMM with a bias and activation epilogue."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return torch.relu(self.linear(x))


def get_inputs():
    return [torch.randn(1024, 512)]


def get_small_inputs():
    return [torch.randn(10, 512)]


def get_init_inputs():
    return [512, 384]
