"""adapters/db ring."""
