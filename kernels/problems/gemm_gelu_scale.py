"""Linear, GELU, then a constant scale: the epilogue fuses into the GEMM."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.scale = scale

    def forward(self, x):
        x = self.fc(x)
        x = F.gelu(x)
        return x * self.scale


def get_inputs():
    return [torch.randn(2048, 768)]


def get_small_inputs():
    return [torch.randn(7, 768)]


def get_init_inputs():
    return [768, 96, 0.5]
