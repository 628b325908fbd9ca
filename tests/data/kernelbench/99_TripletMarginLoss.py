# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/99_TripletMarginLoss.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/99_TripletMarginLoss.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A model that computes a loss.
    """
    def __init__(self, margin=1.0):
        super().__init__()
        self.loss_fn = torch.nn.TripletMarginLoss(margin=margin)

    def forward(self, anchor, positive, negative):
        return self.loss_fn(anchor, positive, negative)

batch_size = 32768
input_shape = (32768,)
dim = 1

def get_inputs():
    return [torch.rand(batch_size, *input_shape), torch.rand(batch_size, *input_shape), torch.rand(batch_size, *input_shape)]

def get_small_inputs():
    return [torch.randn(8, 64), torch.randn(8, 64), torch.randn(8, 64)]

def get_init_inputs():
    return [1.0]
