"""leaky_relu, clamp and hardswish in one chain."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return F.hardswish(torch.clamp(F.leaky_relu(x, 0.1), min=-2.0, max=3.0))


def get_inputs():
    return [torch.randn(8192, 8192)]


def get_small_inputs():
    return [torch.randn(7, 31)]


def get_init_inputs():
    return []
