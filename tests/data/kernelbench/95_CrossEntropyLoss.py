# KernelBench-style problem modelled on ScalingIntelligence/KernelBench level1/95_CrossEntropyLoss.py
# (https://github.com/ScalingIntelligence/KernelBench/blob/main/KernelBench/level1/95_CrossEntropyLoss.py); written in its style,
# with get_small_inputs() added for the Triton interpreter.

import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A model that computes Cross Entropy Loss for multi-class classification tasks.
    """
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        return torch.nn.functional.cross_entropy(predictions, targets)


batch_size = 4096
num_classes = 10


def get_inputs():
    return [torch.rand(batch_size, num_classes), torch.randint(0, num_classes, (batch_size,))]


def get_small_inputs():
    return [torch.randn(8, num_classes), torch.randint(0, num_classes, (8,))]


def get_init_inputs():
    return []
