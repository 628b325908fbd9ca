# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/23_Softmax.py (variant: rank 3, dim 0, LogSoftmax module and argmax of it)
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/23_Softmax.py (variant: rank 3, dim 0, LogSoftmax module and argmax of it)); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Softmax over the first dim of a rank-3 tensor, then the argmax over that dim of its log.
    """
    def __init__(self):
        super().__init__()
        self.log_softmax = nn.LogSoftmax(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmax(self.log_softmax(x) * 2.0, dim=0)


def get_inputs():
    return [torch.rand(64, 512, 512)]


def get_small_inputs():
    return [torch.randn(9, 5, 7)]


def get_init_inputs():
    return []
