"""api ring."""
