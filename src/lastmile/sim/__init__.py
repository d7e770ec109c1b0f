"""sim ring."""
