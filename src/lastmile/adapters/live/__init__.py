"""Live courier position stores: in memory (embedded profile) and Redis GEO (scale-out)."""
