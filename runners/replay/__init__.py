"""Recorded sweeps: a runner that replays recorded runs and a target over a recorded table."""
