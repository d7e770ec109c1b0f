"""Ops view of overload protection: priority classes, shedding, rate limits, breakers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from lastmile.api.deps import Ops

router = APIRouter(prefix="/v1/ops", tags=["ops"])


@router.get("/overload")
def overload(who: Ops, request: Request) -> dict[str, Any]:
    """This process's admission state (in flight per class, classes being shed, admitted and
    shed counts since start), the per-client rate limits, and every circuit breaker's state.
    The same figures are Prometheus metrics (``lastmile_admitted_total`` and the like)."""
    guard = getattr(request.app.state, "overload", None)
    breakers = getattr(request.app.state.container, "breakers", None)
    return {"admission": guard.snapshot() if guard is not None else None,
            "breakers": breakers.snapshot() if breakers is not None else []}
