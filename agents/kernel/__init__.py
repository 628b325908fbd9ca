"""Kernel agents: the coder and the repair/optimise judge that turn a reference into a verified ModelNew."""
