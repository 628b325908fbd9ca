"""SwiGLU's elementwise half: silu(gate) * up."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, gate, up):
        return F.silu(gate) * up


def get_inputs():
    return [torch.randn(8192, 4096), torch.randn(8192, 4096)]


def get_small_inputs():
    return [torch.randn(6, 37), torch.randn(6, 37)]


def get_init_inputs():
    return []
