"""WebSocket feeds: a region's live events for ops, one order's progress for its consumer.

Authentication takes a credential from a ``bearer.<credential>`` WebSocket
subprotocol, the ``token`` or ``key`` query parameter, or the
``Authorization: Bearer`` or ``X-API-Key`` header. The credential is an API key
or, better where it must travel in a URL, a stream token from
``POST /v1/stream-tokens`` that expires in a minute (browsers cannot set
headers on a WebSocket; a key in a URL ends up in access logs). Refusals accept the handshake and then close
with an application code and a reason, so clients can tell why:
4401 no or bad key, 4403 wrong role, 4404 no such region or order (or not yours).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from lastmile.api.deps import Anyone, ServicesDep
from lastmile.api.schemas import iso, offer_out
from lastmile.api.streams import (
    Batch,
    CourierFeed,
    StreamClosed,
    StreamHub,
    Subscription,
    order_feed,
    region_feed,
)
from lastmile.app import dashboard, offers, queries, routes, tenancy
from lastmile.app.auth import (
    STREAM_TOKEN_TTL_S,
    Principal,
    authenticate_stream,
    issue_stream_token,
)
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.core.errors import DomainError, NotFound, Unauthorized
from lastmile.core.eta.travel import speed_of
from lastmile.core.geo import Point
from lastmile.core.orders import TERMINAL, Order

router = APIRouter(tags=["streams"])
log = logging.getLogger(__name__)

UNAUTHORIZED, FORBIDDEN, NOT_FOUND, GOING_AWAY, UNAVAILABLE = 4401, 4403, 4404, 1001, 1013
SUBPROTOCOL_PREFIX = "bearer."
Render = Callable[[Event], Awaitable[list[dict[str, Any]]]]
FINISHED = {"type": "stream.finished"}
_TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)


class _Finished(Exception):
    """The feed has nothing more to say (the order reached a terminal state)."""


def _key(ws: WebSocket, key: str | None) -> tuple[str | None, str | None]:
    """(API key, subprotocol to echo) from the query, the headers or a subprotocol."""
    for proto in ws.scope.get("subprotocols") or ():
        if proto.startswith(SUBPROTOCOL_PREFIX):
            return proto[len(SUBPROTOCOL_PREFIX):], proto
    token = ws.query_params.get("token")
    if token or key:
        return token or key, None
    auth = ws.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), None
    return ws.headers.get("x-api-key"), None


async def _refuse(ws: WebSocket, code: int, reason: str, subprotocol: str | None = None) -> None:
    await ws.accept(subprotocol=subprotocol)
    await ws.close(code=code, reason=reason[:120])  # a close reason is at most 123 bytes


async def _admit(ws: WebSocket, key: str | None, role: str) -> tuple[Principal, str | None] | None:
    """The caller when its key is valid and has ``role``; else closes the socket, returns None."""
    plaintext, subprotocol = _key(ws, key)
    svc: Services = ws.app.state.container.services
    try:
        who = await run_in_threadpool(authenticate_stream, svc, plaintext)
    except Unauthorized as exc:
        await _refuse(ws, UNAUTHORIZED, exc.message, subprotocol)
        return None
    if who.role != role:
        await _refuse(ws, FORBIDDEN, f"this stream is for {role}s; the key is a {who.role}'s",
                      subprotocol)
        return None
    tenancy.enter(who.tenant)  # the socket's task: its lookups are scoped to the tenant
    return who, subprotocol


async def _open(ws: WebSocket, key: str | None,
                role: str) -> tuple[Principal, str | None, Services, StreamHub] | None:
    """Admit ``role`` and find the running hub, or refuse the socket (None)."""
    admitted = await _admit(ws, key, role)
    if admitted is None:
        return None
    who, subprotocol = admitted
    hub = _hub(ws)
    if not hub.running:
        await _refuse(ws, UNAVAILABLE, "streams are not running", subprotocol)
        return None
    return who, subprotocol, ws.app.state.container.services, hub


def _hub(ws: WebSocket) -> StreamHub:
    return cast(StreamHub, ws.app.state.stream_hub)  # app.state is untyped


async def _client_gone(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


def _dropped(batch: Batch, sub: Subscription) -> dict[str, Any]:
    return {"type": "stream.dropped", "dropped": batch.dropped, "dropped_total": sub.dropped_total}


async def _pump(ws: WebSocket, sub: Subscription, render: Render) -> None:
    """Send rendered events until the client leaves, the feed finishes or the hub stops."""
    reader = asyncio.create_task(_client_gone(ws))
    try:
        while True:
            getter = asyncio.create_task(sub.next_batch())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                return
            try:
                batch = getter.result()
            except StreamClosed:
                await ws.close(code=GOING_AWAY, reason="server shutting down")
                return
            if batch.dropped:
                await ws.send_json(_dropped(batch, sub))
            try:
                for event in batch.events:
                    for message in await render(event):
                        await ws.send_json(message)
            except _Finished:
                await ws.close(code=1000, reason="order finished")
                return
    except (WebSocketDisconnect, RuntimeError):  # the client left while we were sending
        return
    finally:
        reader.cancel()
        sub.close()


@router.post("/v1/stream-tokens", status_code=201)
def stream_token(svc: ServicesDep, who: Anyone) -> dict[str, Any]:
    """A token that opens this caller's WebSocket feeds for 60 seconds (send the key in the
    ``Authorization`` header here, then the token as the ``bearer.<token>`` subprotocol or
    ``?token=``); a reconnect asks for a fresh one."""
    token, expires_at = issue_stream_token(svc, who)
    return {"token": token, "expires_at": iso(expires_at), "ttl_s": STREAM_TOKEN_TTL_S}


@router.websocket("/v1/ops/regions/{region_id}/stream")
async def region_stream(ws: WebSocket, region_id: str, key: str | None = None) -> None:
    """Ops: every ``courier.moved``, ``order.*``, ``offer.*`` and ``courier.shift_*`` of a region.

    Messages are the events' JSON (``type``, ``occurred_at``, ``subject_id``,
    ``data``...), after a ``stream.hello``; ``stream.dropped`` reports events a
    slow client lost (the oldest go first).
    """
    opened = await _open(ws, key, "ops")
    if opened is None:
        return
    who, subprotocol, svc, hub = opened
    try:
        await run_in_threadpool(queries.live_counts, svc, region_id)
    except NotFound as exc:
        await _refuse(ws, NOT_FOUND, exc.message, subprotocol)
        return
    sub = hub.open(region_feed(region_id), tenant=who.tenant)
    await ws.accept(subprotocol=subprotocol)
    await ws.send_json({"type": "stream.hello", "region_id": region_id,
                        "queue_size": hub.queue_size})

    async def render(event: Event) -> list[dict[str, Any]]:
        return [event.to_dict()]

    await _pump(ws, sub, render)


class _OrderFeed:
    """The consumer's view of one order: status changes, courier position, updated ETA."""

    def __init__(self, svc: Services, order: Order):
        self._svc = svc
        self.order = order
        self._speeds: dict[str, float] = {}
        self.finished = False

    def _speed(self, courier_id: str) -> float:
        if courier_id not in self._speeds:
            vehicle = queries.get_courier(self._svc, courier_id).vehicle
            self._speeds[courier_id] = speed_of(vehicle)
        return self._speeds[courier_id]

    async def render(self, event: Event) -> list[dict[str, Any]]:
        if event.type.startswith("order."):
            return await self._status(event)
        return await self._position(event)

    async def _status(self, event: Event) -> list[dict[str, Any]]:
        self.order = await run_in_threadpool(self._reload)
        message = {"type": event.type, "order_id": self.order.id, "event_id": event.event_id,
                   "occurred_at": event.occurred_at, "from_status": event.data.get("from_status"),
                   "status": event.data.get("to_status"), "version": event.data.get("version")}
        if event.data.get("to_status") in _TERMINAL_VALUES:
            self.finished = True
            return [message, FINISHED]
        return [message]

    def _reload(self) -> Order:
        with self._svc.uow(read_only=True) as uow:
            found = uow.orders.get(self.order.id)
        return found or self.order

    async def _position(self, event: Event) -> list[dict[str, Any]]:
        lat, lng = float(event.data["lat"]), float(event.data["lng"])
        speed = await run_in_threadpool(self._speed, event.subject_id)
        # A stacked order's ETA follows its stop on the courier's route (app.routes).
        via = await run_in_threadpool(routes.stacked_stops_ahead, self._svc, self.order)
        eta = dashboard.live_eta(
            now=event.occurred_at, courier_at=Point(lat=lat, lng=lng), speed_mps=speed,
            status=self.order.status, pickup=self.order.pickup, dropoff=self.order.dropoff,
            food_ready_at=dashboard.food_ready_at(self.order), via=via)
        return [{
            "type": "courier.position", "order_id": self.order.id, "lat": lat, "lng": lng,
            "courier_status": event.data.get("status"), "occurred_at": event.occurred_at,
            "eta": None if eta is None else {
                "remaining_m": round(eta.remaining_m), "duration_s": round(eta.duration_s),
                "eta_at": eta.eta_at, "p10_at": eta.p10_at, "p90_at": eta.p90_at,
                "model": eta.model, "method": "distance_over_vehicle_speed"},
            "quoted_eta": _quoted(self.order),
        }]


def _quoted(order: Order) -> dict[str, float]:
    return {"low_at": order.eta.low_at, "expected_at": order.eta.expected_at,
            "high_at": order.eta.high_at}


@router.websocket("/v1/consumer/orders/{order_id}/stream")
async def order_stream(ws: WebSocket, order_id: str, key: str | None = None) -> None:
    """The consumer's own order: ``order.*`` changes and ``courier.position`` with a live ETA.

    Starts with ``stream.hello`` (current status and quoted window); ends with
    ``stream.finished`` and close code 1000 once the order is delivered or cancelled.
    """
    opened = await _open(ws, key, "consumer")
    if opened is None:
        return
    who, subprotocol, svc, hub = opened
    # Subscribe before reading the order: a change in between arrives twice, never not at all.
    sub = hub.open(order_feed(order_id), tenant=who.tenant)
    try:
        order = await run_in_threadpool(lambda: queries.get_order(svc, order_id, who=who))
    except DomainError:
        sub.close()
        await _refuse(ws, NOT_FOUND, f"no order {order_id}", subprotocol)
        return
    await ws.accept(subprotocol=subprotocol)
    await ws.send_json({"type": "stream.hello", "order_id": order.id,
                        "status": order.status.value, "quoted_eta": _quoted(order)})
    if order.status in TERMINAL:
        sub.close()
        await ws.send_json(FINISHED)
        await ws.close(code=1000, reason="order finished")
        return
    feed = _OrderFeed(svc, order)

    async def render(event: Event) -> list[dict[str, Any]]:
        messages = await feed.render(event)
        if feed.finished:
            for message in messages:
                await ws.send_json(message)
            raise _Finished()
        return messages

    await _pump(ws, sub, render)



@router.websocket("/v1/courier/stream")
async def courier_stream(ws: WebSocket, key: str | None = None) -> None:
    """The courier's own feed: ``offer.*`` for this courier and ``order.*`` of orders held.

    Starts with ``stream.hello`` (the live offer, if any, and the orders held), so an app
    that reconnects misses nothing it must act on.
    """
    opened = await _open(ws, key, "courier")
    if opened is None:
        return
    who, subprotocol, svc, hub = opened

    def load() -> tuple[tuple[str, ...], Any]:
        with svc.uow(read_only=True) as uow:
            courier = uow.couriers.get(who.subject_id)
        return (courier.active_order_ids if courier else ()), offers.current_offer(
            svc, who.subject_id)

    # Subscribe before reading: an offer made in between arrives (maybe twice), never lost.
    feed = CourierFeed(who.subject_id, ())
    sub = hub.open(feed, tenant=who.tenant)
    held, offer = await run_in_threadpool(load)
    feed.hold(held)
    await ws.accept(subprotocol=subprotocol)
    await ws.send_json({"type": "stream.hello", "courier_id": who.subject_id,
                        "active_order_ids": list(held),
                        "offer": None if offer is None else offer_out(offer)})

    async def render(event: Event) -> list[dict[str, Any]]:
        return [event.to_dict()]

    await _pump(ws, sub, render)
