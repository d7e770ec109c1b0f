"""Which notifications an order event produces, and for whom.

Consumer, merchant and courier are told about the moments they care about:
order confirmed, courier assigned, courier arriving, delivered, delayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lastmile.core.tenancy import DEFAULT_TENANT


class NoticeKind(StrEnum):
    ORDER_CONFIRMED = "order_confirmed"
    COURIER_ASSIGNED = "courier_assigned"
    ARRIVING = "arriving"
    DELIVERED = "delivered"
    DELAYED = "delayed"
    PIN_LOCKED = "pin_locked"


class NoticeStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt; still stored, retryable by ops


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """One message to one recipient (``kind`` consumer | merchant | courier | ops)."""

    kind: NoticeKind
    recipient_kind: str
    recipient_id: str
    subject: str
    body: str


# event type -> (notice kind, recipients)
_RULES: dict[str, tuple[NoticeKind, tuple[str, ...]]] = {
    "order.confirmed": (NoticeKind.ORDER_CONFIRMED, ("consumer",)),
    "order.assigned": (NoticeKind.COURIER_ASSIGNED, ("consumer", "merchant")),
    "order.courier_at_dropoff": (NoticeKind.ARRIVING, ("consumer",)),
    "order.delivered": (NoticeKind.DELIVERED, ("consumer", "merchant", "courier")),
    # Every order, marketplace or Drive, is flagged once by app.delays (Drive's own
    # ``delivery.delayed`` goes to the business's webhooks, not to people).
    "order.delayed": (NoticeKind.DELAYED, ("consumer", "merchant", "courier")),
    # Someone kept guessing the drop-off PIN (app.pins): ops look into it.
    "order.pin_locked": (NoticeKind.PIN_LOCKED, ("ops",)),
}

NOTIFYING_EVENTS = frozenset(_RULES)

_TEXT = {
    NoticeKind.ORDER_CONFIRMED: ("Order confirmed", "Order {order_id} is confirmed and being prepared."),
    NoticeKind.COURIER_ASSIGNED: ("Courier assigned", "A courier is on the way for order {order_id}."),
    NoticeKind.ARRIVING: ("Courier arriving", "Your courier is arriving with order {order_id}."),
    NoticeKind.DELIVERED: ("Delivered", "Order {order_id} was delivered."),
    NoticeKind.DELAYED: ("Running late", "Order {order_id} is running late; we are on it."),
    NoticeKind.PIN_LOCKED: ("PIN delivery locked",
                            "Order {order_id}: too many wrong drop-off PINs; PIN delivery is "
                            "locked until ops unlock it (POST /v1/ops/orders/{order_id}/pin-unlock)."),
}


def notices_for(
    event_type: str, *, order_id: str, parties: dict[str, str | None]
) -> tuple[Notice, ...]:
    """The notices ``event_type`` produces; ``parties`` maps recipient kind -> id (or None).

    Recipients without an id (no courier yet) are skipped; an event type
    without a rule produces nothing.
    """
    rule = _RULES.get(event_type)
    if rule is None:
        return ()
    kind, recipients = rule
    subject, body = _TEXT[kind]
    return tuple(
        Notice(kind=kind, recipient_kind=r, recipient_id=rid, subject=subject,
               body=body.format(order_id=order_id))
        for r in recipients
        if (rid := parties.get(r))
    )


def retry_delay_s(attempts: int, *, base_s: float = 30.0, cap_s: float = 3600.0) -> float:
    """Delay before retrying a notice after ``attempts`` failures: base * 2^(n-1), capped."""
    # The exponent is capped so a huge attempt count still returns the cap (no float overflow).
    factor: int = 2 ** min(max(0, attempts - 1), 62)
    return min(cap_s, base_s * factor)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """A notice queued for one channel; never deleted, so a failed channel loses nothing."""

    id: str
    event_id: str
    kind: NoticeKind
    recipient_kind: str
    recipient_id: str
    channel: str
    subject: str
    body: str
    created_at: float
    address: str | None = None
    status: NoticeStatus = NoticeStatus.PENDING
    attempts: int = 0
    next_attempt_at: float | None = None
    last_error: str | None = None
    sent_at: float | None = None
    tenant: str = DEFAULT_TENANT  # whose notice: the sender sends it as this tenant
