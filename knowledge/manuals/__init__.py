"""Manuals in, knowledge out: ingestion of man pages, Markdown, HTML, PDF, text and help output; parameter extraction."""
