# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/41_Max_Pooling_1D.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/41_Max_Pooling_1D.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    Simple model that performs Max Pooling 1D.
    """
    def __init__(self, kernel_size: int, stride: int = None, padding: int = 0, dilation: int = 1,
                 return_indices: bool = False):
        super().__init__()
        self.maxpool = nn.MaxPool1d(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                                    return_indices=return_indices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(x)


def get_inputs():
    return [torch.rand(64, 192, 65536)]


def get_small_inputs():
    return [torch.randn(2, 4, 32)]


def get_init_inputs():
    return [8, 1, 4, 3, False]
