"""adapters ring."""
