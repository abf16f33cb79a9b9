"""Retrieval backends: one folder per backend, each owning the writer, searcher and manifest section of its leg."""
