"""Webhooks for businesses: endpoints, the event -> message subscriber, thresholds, sending.

Every status change of a Drive order becomes one message per subscribed
endpoint (``webhook_messages``, unique per endpoint and ``event_id``, so a
redelivered bus event queues nothing twice). The sender posts due messages
signed with HMAC-SHA256, records each attempt, and backs off exponentially
until ``RetryPolicy.max_attempts``, after which the message is ``dead`` (listed
by the API and re-queueable). Nothing is lost while a receiver is down: the
message stays in the table. The HTTP call never runs inside a transaction. In a test
tenant nothing is posted: the request is captured instead (``app.sandbox``).
"""

from __future__ import annotations

import json
import secrets  # signing secrets: never from the injectable, possibly seeded, rng
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from lastmile.app import sandbox
from lastmile.app.circuits import CircuitOpen
from lastmile.app.context import Services, new_event, record
from lastmile.app.events import Event
from lastmile.app.every_tenant import each_as_its_tenant
from lastmile.app.live import LiveStore
from lastmile.app.ports import UnitOfWork
from lastmile.app.retry import retrying
from lastmile.app.tenancy import current_tenant, platform_scope
from lastmile.core.delivery.model import Delivery
from lastmile.core.delivery.thresholds import (
    CourierFix,
    InFlight,
    Threshold,
    ThresholdRules,
    evaluate_thresholds,
)
from lastmile.core.errors import InvalidInput, NotFound
from lastmile.core.orders import Order
from lastmile.core.sandbox import CaptureChannel
from lastmile.core.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPES,
    SIGNATURE_HEADER,
    Endpoint,
    Message,
    MessageStatus,
    RetryPolicy,
    after_failure,
    signature_header,
    validate_filter,
    validate_url,
    wants,
)

API_VERSION = 1
DEFAULT_RETRY = RetryPolicy()
Positions = Callable[[str, float], CourierFix | None]


class WebhookTransport(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
        """POST ``body``; the HTTP status, or raise on a network failure."""
        ...


def register_endpoint(services: Services, merchant_id: str, *, url: str,
                      event_types: tuple[str, ...] = (), eta_under_s: int | None = 300,
                      nearby_m: int | None = 500) -> Endpoint:
    """A new endpoint; its ``secret`` is returned here and never shown again."""
    for name, value in (("eta_under_s", eta_under_s), ("nearby_m", nearby_m)):
        if value is not None and not 1 <= value <= 86_400:
            raise InvalidInput(f"invalid_{name}", f"{name} must be in [1, 86400] (got {value})",
                               field=name)
    endpoint = Endpoint(
        id=services.ids.new("whk"), merchant_id=merchant_id, url=validate_url(url, allow_private=services.webhooks_allow_private),
        secret=f"whsec_{secrets.token_hex(32)}",
        event_types=validate_filter(event_types), created_at=services.clock.now(),
        eta_under_s=eta_under_s, nearby_m=nearby_m)
    with services.uow() as uow:
        uow.webhooks.add_endpoint(endpoint)
        uow.commit()
    return endpoint


def list_endpoints(services: Services, merchant_id: str) -> list[Endpoint]:
    with services.uow() as uow:
        return uow.webhooks.endpoints_for(merchant_id)


def _own_endpoint(uow: UnitOfWork, merchant_id: str, endpoint_id: str) -> Endpoint:
    endpoint = uow.webhooks.endpoint(endpoint_id)
    if endpoint is None or endpoint.merchant_id != merchant_id:
        raise NotFound("endpoint_not_found", f"no webhook endpoint {endpoint_id}",
                       field="endpoint_id")
    return endpoint


def remove_endpoint(services: Services, merchant_id: str, endpoint_id: str) -> None:
    with services.uow() as uow:
        _own_endpoint(uow, merchant_id, endpoint_id)
        uow.webhooks.deactivate(endpoint_id)
        uow.commit()


def list_messages(services: Services, merchant_id: str, *, endpoint_id: str | None = None,
                  status: str | None = None, limit: int = 50) -> list[Message]:
    if status is not None and status not in {s.value for s in MessageStatus}:
        raise InvalidInput("invalid_status", f"status must be one of pending, delivered, dead "
                           f"(got {status!r})", field="status")
    with services.uow() as uow:
        return uow.webhooks.messages(merchant_id, endpoint_id=endpoint_id, status=status,
                                     limit=limit)


def message_attempts(services: Services, merchant_id: str, message_id: str) -> list[dict[str, Any]]:
    with services.uow() as uow:
        message = uow.webhooks.message(message_id)
        if message is None or message.merchant_id != merchant_id:
            raise NotFound("message_not_found", f"no webhook message {message_id}")
        return uow.webhooks.attempts(message_id)


def requeue(services: Services, merchant_id: str, message_id: str) -> Message:
    """Put a dead (or pending) message back in the queue for an attempt now."""
    with services.uow() as uow:
        message = uow.webhooks.message(message_id)
        if message is None or message.merchant_id != merchant_id:
            raise NotFound("message_not_found", f"no webhook message {message_id}")
        if message.status is not MessageStatus.DELIVERED:
            message = replace(message, status=MessageStatus.PENDING, attempts=0,
                              next_attempt_at=services.clock.now())
            uow.webhooks.save_message(message)
            uow.commit()
        return message


def webhook_type(event_type: str) -> str | None:
    """The public type of a bus event (``order.picked_up`` -> ``delivery.picked_up``)."""
    if event_type == "order.placed":
        return "delivery.created"
    if event_type.startswith("order."):
        return "delivery." + event_type.removeprefix("order.")
    if event_type.startswith("delivery."):
        return event_type
    return None


def payload(*, event_id: str, type: str, at: float, d: Delivery, order: Order,
            extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": event_id, "type": type, "created_at": at, "api_version": API_VERSION,
        "data": {"external_delivery_id": d.external_delivery_id, "delivery_id": d.id,
                 "order_id": order.id, "status": order.status.value,
                 "courier_id": order.courier_id, "eta_expected_at": order.eta.expected_at,
                 "tracking_path": f"/track/{d.tracking_token}", "outcome": d.outcome,
                 # What the business pays: the fee of its quote and its tip (app.drive).
                 "fee_minor": order.prices.delivery_fee.amount_minor,
                 "tip_minor": order.prices.tip.amount_minor, "currency": order.currency, **extra},
    }


def _enqueue(uow: UnitOfWork, services: Services, endpoints: list[Endpoint], body: dict[str, Any],
             d: Delivery) -> int:
    queued = 0
    for ep in endpoints:
        if not wants(ep.event_types, body["type"]):
            continue
        queued += uow.webhooks.enqueue(Message(
            id=services.ids.new("whm"), endpoint_id=ep.id, merchant_id=d.merchant_id,
            event_id=body["event_id"], event_type=body["type"], payload=body,
            created_at=services.clock.now(), next_attempt_at=services.clock.now(),
            tenant=current_tenant()))
    return queued


def on_event(services: Services, event: Event) -> None:
    """Bus subscriber: queue a message per endpoint for each status change of a Drive order.

    Idempotent: the message table is unique per (endpoint, event id).
    """
    public_type = webhook_type(event.type)
    if public_type not in EVENT_TYPES:  # internal order events (PIN attempts) stay inside
        return
    # Most orders are the marketplace's, not Drive's: a read-only look finds out without
    # a write transaction (on SQLite, the one writer lock) per event.
    with services.uow(read_only=True) as uow:
        if uow.deliveries.by_order(event.subject_id) is None:
            return
    with services.uow() as uow:
        d = uow.deliveries.by_order(event.subject_id)
        order = uow.orders.get(event.subject_id)
        if d is None or order is None:
            return
        endpoints = uow.webhooks.endpoints_for(d.merchant_id)
        extra = {k: v for k, v in event.data.items()
                 if k in ("reason", "action", "from_status", "to_status", "fields", "deadline_at",
                          "late_by_s", "consumer_charge_minor")}
        body = payload(event_id=event.event_id, type=public_type, at=event.occurred_at, d=d,
                       order=order, extra=extra)
        if _enqueue(uow, services, endpoints, body, d):
            uow.commit()


def positions_from(uow_live: LiveStore | None, services: Services) -> Positions:
    """Courier positions from the live store, falling back to the courier row's last location."""

    def position(courier_id: str, now: float) -> CourierFix | None:
        live = uow_live.get(courier_id, now=now) if uow_live is not None else None
        if live is not None:
            return CourierFix(point=live.point, at=live.updated_at)
        with services.uow() as uow:
            courier = uow.couriers.get(courier_id)
        if courier is None or courier.location is None:
            return None
        return CourierFix(point=courier.location, at=now)

    return position


def in_flight_of(d: Delivery, order: Order) -> InFlight:
    return InFlight(status=order.status.value, dropoff=d.dropoff,
                    eta_expected_at=order.eta.expected_at, eta_high_at=order.eta.high_at,
                    dropoff_window=d.dropoff_window)


def evaluate_thresholds_once(services: Services, positions: Positions, *,
                             batch: int = 200) -> int:
    """Fire threshold alerts for in-flight deliveries; returns how many were queued.

    ETA and proximity thresholds are per endpoint (its own N); the delay alert
    is the delivery's own and becomes a ``delivery.delayed`` bus event once.
    """
    now = services.clock.now()
    fired, after = 0, None
    while True:
        work = _in_flight_page(services, batch, after)
        for d, order, endpoints in work.items:
            fix = positions(order.courier_id, now) if order.courier_id else None
            fired += _fire(services, d, order, endpoints, fix, now)
        if work.last_id is None:
            return fired
        after = work.last_id


@dataclass(frozen=True, slots=True, kw_only=True)
class _Page:
    items: list[tuple[Delivery, Order, list[Endpoint]]]
    last_id: str | None  # None when this was the last page


def _in_flight_page(services: Services, batch: int, after: str | None) -> _Page:
    """One keyset page of in-flight deliveries; finished ones are marked on the way."""
    with services.uow() as uow:
        page = uow.deliveries.in_flight(batch, after_id=after)
        items = []
        for d in page:
            order = uow.orders.get(d.order_id)
            if order is None or order.terminal:
                uow.deliveries.set_finished(d.id)
                continue
            items.append((d, order, uow.webhooks.endpoints_for(d.merchant_id)))
        uow.commit()
    return _Page(items=items, last_id=page[-1].id if len(page) == batch else None)


@retrying
def _fire(services: Services, d: Delivery, order: Order, endpoints: list[Endpoint],
          fix: CourierFix | None, now: float) -> int:
    snapshot = in_flight_of(d, order)
    fired = 0
    with services.uow() as uow:
        # ``d`` was read in the page's unit of work: saving it back as it was would undo a
        # change made since (a courier's proof); re-read it, and save with compare-and-set.
        d = uow.deliveries.by_order(d.order_id) or d
        late = evaluate_thresholds(snapshot, fix, now, ThresholdRules(eta_under_s=None,
                                                                      nearby_m=None))
        if late and d.delayed_at is None:
            record(uow, services, new_event(
                services, type="delivery.delayed", region_id=order.region_id, subject_id=order.id,
                actor_kind="system", actor_id="thresholds", data=dict(late[0].data)))
            uow.deliveries.save(replace(d, delayed_at=now))
            fired += 1
        for ep in endpoints:
            rules = ThresholdRules(eta_under_s=ep.eta_under_s, nearby_m=ep.nearby_m)
            for hit in evaluate_thresholds(snapshot, fix, now, rules):
                if hit.kind is Threshold.DELAYED:
                    continue
                kind = f"delivery.{hit.kind.value}"
                body = payload(event_id=f"evt_{order.id}_{hit.kind.value}", type=kind, at=now,
                               d=d, order=order, extra=dict(hit.data))
                fired += _enqueue(uow, services, [ep], body, d)
        uow.commit()
    return fired


def send_webhooks_once(services: Services, transport: WebhookTransport, *,
                       policy: RetryPolicy = DEFAULT_RETRY, batch: int = 50,
                       timeout_s: float = 5.0) -> int:
    """Attempt every due message of every tenant once, each as its tenant; returns how many
    attempts were made."""
    with platform_scope(), services.uow() as uow:  # claimed across tenants
        # Claimed for longer than the whole batch can take (every attempt up to its timeout),
        # so no other sender posts them meanwhile; a crashed sender's claim lapses after it.
        due = uow.webhooks.due(services.clock.now(), batch, lease_s=batch * timeout_s + 60)
        endpoints = {m.endpoint_id: uow.webhooks.endpoint(m.endpoint_id) for m in due}
        uow.commit()
    for message in each_as_its_tenant(due):  # posted and recorded as the message's tenant
        _attempt(services, transport, message, endpoints[message.endpoint_id], policy, timeout_s)
    return len(due)


def _attempt(services: Services, transport: WebhookTransport, message: Message,
             endpoint: Endpoint | None, policy: RetryPolicy, timeout_s: float) -> None:
    status_code: int | None = None
    error: str | None = "endpoint removed"
    if endpoint is not None and endpoint.active:
        body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()
        ts = int(services.clock.now())
        headers = {"Content-Type": "application/json", "User-Agent": "lastmile-webhooks/1",
                   SIGNATURE_HEADER: signature_header(endpoint.secret, ts, body),
                   EVENT_ID_HEADER: message.event_id}
        try:
            if sandbox.is_sandboxed(services):  # a test tenant: recorded, never posted
                _capture(services, endpoint.url, headers, body, message)
                error = None
            else:
                status_code = transport.post(endpoint.url, body, headers, timeout_s)
                error = None if 200 <= status_code < 300 else f"HTTP {status_code}"
        except CircuitOpen as exc:  # nothing was sent: later, and no attempt spent
            _postpone(services, message, exc)
            return
        except Exception as exc:  # any receiver failure is recorded on the row and retried
            error = f"{type(exc).__name__}: {exc}"[:500]
    now = services.clock.now()
    attempts = message.attempts + 1
    if error is None:
        nxt = replace(message, status=MessageStatus.DELIVERED, attempts=attempts,
                      delivered_at=now, last_error=None, last_status_code=status_code,
                      next_attempt_at=None)
    else:
        # A removed endpoint will never answer: straight to the dead letter, no retries.
        gone = endpoint is None or not endpoint.active
        status, at = after_failure(policy.max_attempts if gone else attempts, now, policy)
        nxt = replace(message, status=status, attempts=attempts, next_attempt_at=at,
                      last_error=error, last_status_code=status_code)
    with services.uow() as uow:
        uow.webhooks.add_attempt(message_id=message.id, attempt=attempts, at=now,
                                 status_code=status_code, error=error)
        uow.webhooks.save_message(nxt)
        uow.commit()


def _capture(services: Services, url: str, headers: dict[str, str], body: bytes,
             message: Message) -> None:
    """The exact request a test tenant's message would have made (``app.sandbox``)."""
    data = message.payload.get("data")
    subject = data.get("order_id") if isinstance(data, dict) else None
    sandbox.capture(services, channel=CaptureChannel.WEBHOOK, target=url,
                    event_type=message.event_type, subject_id=str(subject or message.event_id),
                    headers=headers, body=body.decode())


def _postpone(services: Services, message: Message, circuit: CircuitOpen) -> None:
    """Back in the queue for when the receiver's breaker lets a trial through; no attempt
    row (no request was made) and ``attempts`` unchanged, so an outage longer than the
    retry schedule does not send the message to the dead letters unattempted."""
    nxt = replace(message, next_attempt_at=services.clock.now() + max(1.0, circuit.retry_after_s),
                  last_error=str(circuit)[:500])
    with services.uow() as uow:
        uow.webhooks.save_message(nxt)
        uow.commit()
