"""ETAs: one travel-time model, one engine, learned models with honest intervals (pure)."""
