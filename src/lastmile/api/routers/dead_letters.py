"""Operations on event delivery: durable subscribers' backlogs, dead letters and replays."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from lastmile.api.deps import Ops, ServicesDep
from lastmile.api.schemas import Id, dead_letter_out, subscriber_out
from lastmile.app import dead_letters

router = APIRouter(prefix="/v1/ops", tags=["ops"])


@router.get("/dead-letters")
def list_dead_letters(
    svc: ServicesDep, who: Ops,
    subscriber: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    include_replayed: bool = False,
    limit: Annotated[int, Query(ge=1, le=dead_letters.MAX_LIST)] = 100,
) -> dict[str, Any]:
    """Events a durable subscriber failed on too often, oldest first (replayed ones too with
    ``include_replayed``)."""
    found = dead_letters.list_dead_letters(svc, subscriber=subscriber,
                                           include_replayed=include_replayed, limit=limit)
    return {"dead_letters": [dead_letter_out(d) for d in found]}


@router.post("/dead-letters/{dead_letter_id}/replay")
def replay_dead_letter(svc: ServicesDep, who: Ops, dead_letter_id: Id,
                       request: Request) -> dict[str, Any]:
    """Deliver the event again to that one subscriber. Idempotent: ``queued`` is false when a
    replay was already queued or done since the event was parked."""
    replay = dead_letters.replay_dead_letter(
        svc, dead_letter_id, requeue=request.app.state.container.requeue)
    return {"dead_letter": dead_letter_out(replay.dead_letter), "queued": replay.queued}


@router.get("/relay")
def relay(svc: ServicesDep, who: Ops, request: Request) -> dict[str, Any]:
    """Durable subscribers (position, backlog, parked) and this process's relay counters:
    events fanned out, delivered, retried, parked; live subscriber failures. On JetStream
    also ``lag`` (per durable consumer: pending + unacknowledged; null while NATS is
    unreachable) and this process's counts per consumer."""
    container = request.app.state.container
    relay = container.outbox_relay
    out: dict[str, Any] = {
        "subscribers": [subscriber_out(s) for s in dead_letters.subscriber_states(svc)],
        "this_process": {
            "relay_id": relay.relay_id if relay is not None else None,
            "counts": relay.stats.as_dict() if relay is not None else {},
            "live_failures": container.bus.live_failures}}
    out.update(container.event_log_report())
    return out
