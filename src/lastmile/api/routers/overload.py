"""Ops view of overload protection: priority classes, shedding, rate limits, breakers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from lastmile.api.deps import Ops
from lastmile.api.priorities import ROUTE_PRIORITIES
from lastmile.core.overload import PRIORITIES

router = APIRouter(prefix="/v1/ops", tags=["ops"])


@router.get("/overload")
def overload(who: Ops, request: Request) -> dict[str, Any]:
    """This process's admission state (in flight per class, classes being shed, admitted and
    shed counts since start), the per-client rate limits, every circuit breaker's state, and
    which routes are in which class. The figures are also Prometheus metrics
    (``lastmile_admitted_total`` and the like)."""
    guard = getattr(request.app.state, "overload", None)
    breakers = getattr(request.app.state.container, "breakers", None)
    return {"admission": guard.snapshot() if guard is not None else None,
            "breakers": breakers.snapshot() if breakers is not None else [],
            "routes": {p.value: sorted(f"{method} {path}" for (method, path), c
                                       in ROUTE_PRIORITIES.items() if c is p)
                       for p in PRIORITIES}}
