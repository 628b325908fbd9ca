"""Distributed-training targets and the torchrun runner."""
