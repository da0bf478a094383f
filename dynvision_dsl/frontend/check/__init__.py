"""Semantic checks of a parsed spec, one module per concern."""
