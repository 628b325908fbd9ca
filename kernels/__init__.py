"""tunesmith.kernels"""
