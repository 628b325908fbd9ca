"""tunesmith.runners: the hardware boundary — core types, search spaces, runners, targets, statistics."""
