"""core ring."""
