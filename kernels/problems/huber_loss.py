"""F.smooth_l1_loss with its default mean reduction."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        return F.smooth_l1_loss(predictions, targets)


def get_inputs():
    return [torch.randn(128, 4096), torch.randn(128, 4096)]


def get_small_inputs():
    return [torch.randn(6, 30), torch.randn(6, 30)]


def get_init_inputs():
    return []
