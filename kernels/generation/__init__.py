"""Kernel generation without an LLM: read a PyTorch reference's graph and render project-written Triton templates."""
