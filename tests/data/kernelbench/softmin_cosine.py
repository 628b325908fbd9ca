# KernelBench-style problem (not from KernelBench): softmin and a row-wise cosine similarity (no final mean).
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """
    Returns softmin over dim 1 of a and the cosine similarity of a and b along dim 1.
    """
    def __init__(self):
        super().__init__()
        self.softmin = nn.Softmin(dim=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return self.softmin(a) * F.cosine_similarity(a, b, dim=1).unsqueeze(1)


def get_inputs():
    return [torch.randn(4096, 4096), torch.randn(4096, 4096)]


def get_small_inputs():
    return [torch.randn(8, 50), torch.randn(8, 50)]


def get_init_inputs():
    return []
