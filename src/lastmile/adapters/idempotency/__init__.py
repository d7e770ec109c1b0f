"""Idempotency caches (``app.idempotency.IdempotencyCache``): memory and Redis."""
