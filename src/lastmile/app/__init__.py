"""app ring."""
