# KernelBench-style problem (not from KernelBench): the activations KernelBench level 1 leaves out, chained.
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """
    Sums several activations of the same input (module and functional spellings).
    """
    def __init__(self, alpha: float = 0.7):
        super().__init__()
        self.softsign = nn.Softsign()
        self.logsigmoid = nn.LogSigmoid()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.softsign(x) + self.logsigmoid(x) + F.tanhshrink(x) + F.hardshrink(x, 0.4)
        return y + F.softshrink(x) + F.celu(x, self.alpha) + F.threshold(x, 0.1, -2.0) + F.mish(x)


def get_inputs():
    return [torch.randn(4096, 8192) * 4]


def get_small_inputs():
    return [torch.randn(16, 100) * 4]


def get_init_inputs():
    return [0.7]
