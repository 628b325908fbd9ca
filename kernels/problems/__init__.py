"""The project's problem set in KernelBench format, each with a small shape for the Triton interpreter."""
