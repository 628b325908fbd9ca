"""Appliers: put file-system and I/O-library settings in place through the change ledger, and restore them."""
