"""I/O traces: Darshan logs (or a strace fallback) turned into a characterisation of the workload's I/O."""
