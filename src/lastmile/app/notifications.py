"""Notifications: an outbox of consumer, merchant and courier messages, sent per channel.

A bus subscriber turns order events into ``notifications`` rows (one per
recipient and channel, unique per source event, so redelivery queues nothing
twice). The sender hands each due row to its channel outside any transaction:
``pending -> sent``, or back to ``pending`` with a later ``next_attempt_at``
after a failure, and ``failed`` only after ``max_attempts`` (the row stays;
``retry_failed`` re-queues it). A failing channel never loses a message. In a test tenant
nothing goes out: the notice is captured instead (``app.sandbox``) and marked sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from lastmile.app import sandbox
from lastmile.app.circuits import CircuitOpen
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.every_tenant import each_as_its_tenant
from lastmile.app.tenancy import current_tenant, platform_scope
from lastmile.core.delivery.notices import (
    NOTIFYING_EVENTS,
    NoticeStatus,
    Notification,
    notices_for,
    retry_delay_s,
)
from lastmile.core.sandbox import CaptureChannel


class Channel(Protocol):
    def send(self, notification: Notification) -> None:
        """Deliver or raise; the caller records the failure and retries later."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationPolicy:
    channels: tuple[str, ...] = ("log",)  # every notice goes to these
    email_when_known: bool = True  # plus email when the recipient's address is known
    max_attempts: int = 6
    retry_base_s: float = 30.0


DEFAULT_POLICY = NotificationPolicy()


def on_event(services: Services, event: Event, policy: NotificationPolicy) -> None:
    """Bus subscriber: queue the notices ``event`` produces (idempotent per event id)."""
    if event.type not in NOTIFYING_EVENTS:
        return  # most bus traffic (pings, offers) notifies nobody: no transaction for it
    with services.uow() as uow:
        order = uow.orders.get(event.subject_id)
        if order is None:
            return
        parties: dict[str, str | None] = {
            "consumer": order.consumer_id, "merchant": order.merchant_id,
            "courier": order.courier_id or event.data.get("courier_id"), "ops": "ops"}
        notices = notices_for(event.type, order_id=order.id, parties=parties)
        if not notices:
            return
        delivery = uow.deliveries.by_order(order.id)
        email = delivery.contact.email if delivery is not None else ""
        now = services.clock.now()
        for notice in notices:
            address = email if notice.recipient_kind == "consumer" and email else None
            channels = policy.channels + (("email",) if address and policy.email_when_known
                                          else ())
            for channel in channels:
                uow.notifications.add(Notification(
                    id=services.ids.new("ntf"), event_id=event.event_id, kind=notice.kind,
                    recipient_kind=notice.recipient_kind, recipient_id=notice.recipient_id,
                    channel=channel, subject=notice.subject, body=notice.body, created_at=now,
                    address=address if channel == "email" else None, next_attempt_at=now,
                    tenant=current_tenant()))
        uow.commit()


LEASE_S = 600.0  # longer than a batch of channel sends can take (SMTP times out per send)


def send_notifications_once(services: Services, channels: Mapping[str, Channel], *,
                            policy: NotificationPolicy = DEFAULT_POLICY,
                            batch: int = 100) -> int:
    """Try every due notification of every tenant once, each as its tenant; returns how
    many were sent."""
    with platform_scope(), services.uow() as uow:  # claimed across tenants
        # Claimed for a while: a second sender process skips them; a crash frees them later.
        due = uow.notifications.due(services.clock.now(), batch, lease_s=LEASE_S)
        uow.commit()
    sent = 0
    for n in each_as_its_tenant(due):  # sent and settled as the notice's tenant
        error: str | None = None
        channel = channels.get(n.channel)
        try:
            if sandbox.is_sandboxed(services):  # a test tenant: recorded, never sent
                _capture(services, n)
            elif channel is None:
                raise LookupError(f"no channel {n.channel!r} configured")
            else:
                channel.send(n)
        except CircuitOpen as exc:  # the channel is known down: nothing sent, no attempt spent
            _postpone(services, n, exc)
            continue
        except Exception as exc:  # recorded on the row and retried: never lost, never silent
            error = f"{type(exc).__name__}: {exc}"[:500]
        _settle(services, n, error, policy)
        sent += error is None
    return sent


def _capture(services: Services, n: Notification) -> None:
    """What the channel would have carried (``app.sandbox``); ``subject_id`` is the notice's
    source event."""
    to = n.address or f"{n.recipient_kind}/{n.recipient_id}"
    body = json.dumps({"id": n.id, "kind": n.kind.value,
                       "recipient": {"kind": n.recipient_kind, "id": n.recipient_id},
                       "address": n.address, "subject": n.subject, "body": n.body},
                      separators=(",", ":"), sort_keys=True)
    sandbox.capture(services, channel=CaptureChannel.NOTIFICATION, target=f"{n.channel}:{to}",
                    event_type=n.kind.value, subject_id=n.event_id,
                    headers={"X-Lastmile-Notification": n.id, "X-Lastmile-Channel": n.channel},
                    body=body)


def _settle(services: Services, n: Notification, error: str | None,
            policy: NotificationPolicy) -> None:
    now = services.clock.now()
    attempts = n.attempts + 1
    if error is None:
        nxt = replace(n, status=NoticeStatus.SENT, attempts=attempts, sent_at=now,
                      next_attempt_at=None, last_error=None)
    elif attempts >= policy.max_attempts:
        nxt = replace(n, status=NoticeStatus.FAILED, attempts=attempts, next_attempt_at=None,
                      last_error=error)
    else:
        nxt = replace(n, attempts=attempts, last_error=error,
                      next_attempt_at=now + retry_delay_s(attempts, base_s=policy.retry_base_s))
    with services.uow() as uow:
        uow.notifications.save(nxt)
        uow.commit()


def _postpone(services: Services, n: Notification, circuit: CircuitOpen) -> None:
    nxt = replace(n, next_attempt_at=services.clock.now() + max(1.0, circuit.retry_after_s),
                  last_error=str(circuit)[:500])
    with services.uow() as uow:
        uow.notifications.save(nxt)
        uow.commit()


def retry_failed(services: Services, *, limit: int = 100) -> int:
    """Re-queue notifications that gave up (e.g. after fixing a channel's settings)."""
    now = services.clock.now()
    with services.uow() as uow:
        failed = uow.notifications.list(status=NoticeStatus.FAILED.value, limit=limit)
        for n in failed:
            uow.notifications.save(replace(n, status=NoticeStatus.PENDING, attempts=0,
                                           next_attempt_at=now))
        uow.commit()
    return len(failed)
