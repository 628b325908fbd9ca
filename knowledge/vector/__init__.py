"""Retrieval by meaning: the Chroma store, its collections and the offline embedders."""
