"""Sandbox captures: what the acting test tenant's webhooks and notices would have sent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from lastmile.api.deps import Ops, ServicesDep
from lastmile.api.schemas import iso
from lastmile.app import sandbox
from lastmile.core.sandbox import Capture

router = APIRouter(prefix="/v1/ops/sandbox", tags=["ops"])


def capture_out(c: Capture) -> dict[str, Any]:
    return {"id": c.id, "channel": c.channel.value, "target": c.target,
            "event_type": c.event_type, "subject_id": c.subject_id, "headers": c.headers,
            "body": c.body, "created_at": iso(c.created_at)}


@router.get("/captures")
def captures(
    svc: ServicesDep, who: Ops,
    channel: Annotated[str | None, Query(max_length=16, description=(
        "webhook | notification | payment"))] = None,
    subject_id: Annotated[str | None, Query(max_length=128, description=(
        "a webhook's order id; a notice's source event id"))] = None,
    limit: Annotated[int, Query(ge=1, le=sandbox.MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """The acting tenant's captures, newest first: in a test tenant every webhook and
    notice is recorded here (URL, headers with the signature, exact body), never sent.
    A live tenant has none."""
    found = sandbox.list_captures(svc, channel=channel, subject_id=subject_id, limit=limit)
    return {"captures": [capture_out(c) for c in found]}
