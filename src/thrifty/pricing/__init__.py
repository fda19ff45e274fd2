"""Prices and cost: a shipped, dated catalog, user overrides, and a pure cost function."""
