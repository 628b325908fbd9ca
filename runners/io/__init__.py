"""I/O targets: any command with knobs, and the checkpoint writer preset."""
