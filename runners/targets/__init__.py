"""tunesmith.runners.targets"""
