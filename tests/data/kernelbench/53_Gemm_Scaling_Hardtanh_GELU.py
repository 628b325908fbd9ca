# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level2/53_Gemm_Scaling_Hardtanh_GELU.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level2/53_Gemm_Scaling_Hardtanh_GELU.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A model that performs a GEMM, scaling, hardtanh, and GELU activation.
    """
    def __init__(self, in_features, out_features, scaling_factor, hardtanh_min, hardtanh_max):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)
        self.scaling_factor = scaling_factor
        self.hardtanh = nn.Hardtanh(min_val=hardtanh_min, max_val=hardtanh_max)
        self.gelu = nn.GELU()

    def forward(self, x):
        x = self.gemm(x)
        x = x * self.scaling_factor
        x = self.hardtanh(x)
        x = self.gelu(x)
        return x


def get_inputs():
    return [torch.rand(2048, 8192)]


def get_small_inputs():
    return [torch.randn(8, 40)]


def get_init_inputs():
    return [40, 24, 0.5, -2, 2]
