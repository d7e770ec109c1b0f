"""In-memory Drive repositories (deliveries, quotes, webhooks, notifications) for
``tests.fakes.FakeUnitOfWork``; ordering and filters follow ``adapters/db/repositories_drive``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from fake_repos import Table, insert
from lastmile.core.delivery.model import Delivery, DriveQuote
from lastmile.core.delivery.notices import NoticeStatus, Notification
from lastmile.core.errors import Conflict
from lastmile.core.sandbox import Capture
from lastmile.core.webhooks import Endpoint, Message, MessageStatus


class MemDeliveries:
    """Rows are ``(delivery, finished)`` by id."""

    def __init__(self, db: Table[str, tuple[Delivery, bool]]):
        self.t = db

    def _all(self) -> list[tuple[Delivery, bool]]:
        return self.t.rows()

    def add(self, d: Delivery) -> None:
        if any(x.id == d.id or x.order_id == d.order_id or x.tracking_token == d.tracking_token
               or (x.merchant_id, x.external_delivery_id)
               == (d.merchant_id, d.external_delivery_id) for x, _ in self._all()):
            raise Conflict("external_delivery_id_taken",
                           f"external_delivery_id {d.external_delivery_id!r} is being created "
                           "by a concurrent request", field="external_delivery_id")
        self.t.put(d.id, (d, False))

    def save(self, d: Delivery) -> Delivery:
        """Compare-and-set on ``version``, as ``SqlDeliveries.save``."""
        row = self.t.get(d.id)
        if row is None or row[0].version != d.version:
            raise Conflict("concurrent_update",
                           f"delivery {d.id} changed meanwhile (expected version {d.version})")
        saved = replace(d, version=d.version + 1)
        self.t.put(d.id, (saved, row[1]))
        return saved

    def set_finished(self, delivery_id: str) -> None:
        row = self.t.get(delivery_id)
        if row is not None:
            self.t.put(delivery_id, (row[0], True))

    def _first(self, keep: Callable[[Delivery], bool]) -> Delivery | None:
        return next((d for d, _ in self._all() if keep(d)), None)

    def by_external(self, merchant_id: str, external_delivery_id: str) -> Delivery | None:
        return self._first(lambda d: (d.merchant_id, d.external_delivery_id)
                           == (merchant_id, external_delivery_id))

    def by_order(self, order_id: str) -> Delivery | None:
        return self._first(lambda d: d.order_id == order_id)

    def by_token(self, token: str) -> Delivery | None:
        return self._first(lambda d: d.tracking_token == token)

    def page(self, merchant_id: str, *, limit: int,
             after: tuple[float, str] | None = None) -> list[Delivery]:
        rows = sorted((d for d, _ in self._all() if d.merchant_id == merchant_id
                       and (after is None or (d.created_at, d.id) < after)),
                      key=lambda d: (d.created_at, d.id), reverse=True)
        return rows[:limit]

    def in_flight(self, limit: int, *, after_id: str | None = None) -> list[Delivery]:
        rows = sorted((d for d, done in self._all()
                       if not done and (after_id is None or d.id > after_id)),
                      key=lambda d: d.id)
        return rows[:limit]


class MemDriveQuotes:
    def __init__(self, db: Table[tuple[str, str], DriveQuote]):
        self.t = db

    def put(self, q: DriveQuote) -> None:
        self.t.put((q.merchant_id, q.external_delivery_id), q)

    def get(self, merchant_id: str, external_delivery_id: str) -> DriveQuote | None:
        return self.t.get((merchant_id, external_delivery_id))


def claim_due(table: Table[str, Any], pending: Any, now: float, limit: int,
              lease_s: float | None) -> list[Any]:
    """Due rows oldest first; with a lease their next attempt moves ``lease_s`` ahead (the
    rows returned are as they were before the lease, as in ``adapters.db._claim``)."""
    rows = sorted((r for r in table.rows() if r.status is pending and r.next_attempt_at <= now),
                  key=lambda r: (r.next_attempt_at, r.created_at, r.id))[:limit]
    if lease_s is not None:
        for r in rows:
            table.put(r.id, replace(r, next_attempt_at=now + lease_s))
    return rows


class MemWebhooks:
    def __init__(self, endpoints: Table[str, Endpoint], messages: Table[str, Message],
                 attempts: Table[int, dict[str, Any]], seq: Iterator[int]):
        self.e, self.m, self.a, self.seq = endpoints, messages, attempts, seq

    def add_endpoint(self, e: Endpoint) -> None:
        insert(self.e, e.id, e)

    def deactivate(self, endpoint_id: str) -> None:
        e = self.e.get(endpoint_id)
        if e is not None:
            self.e.put(endpoint_id, replace(e, active=False))

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self.e.get(endpoint_id)

    def endpoints_for(self, merchant_id: str) -> list[Endpoint]:
        return sorted((e for e in self.e.rows() if e.merchant_id == merchant_id and e.active),
                      key=lambda e: (e.created_at, e.id))

    def enqueue(self, m: Message) -> bool:
        if m.id in self.m or any((x.endpoint_id, x.event_id) == (m.endpoint_id, m.event_id)
                                 for x in self.m.rows()):
            return False
        self.m.put(m.id, m)
        return True

    def message(self, message_id: str) -> Message | None:
        return self.m.get(message_id)

    def due(self, now: float, limit: int, *, lease_s: float | None = None) -> list[Message]:
        return claim_due(self.m, MessageStatus.PENDING, now, limit, lease_s)

    def save_message(self, m: Message) -> None:
        if m.id in self.m:
            self.m.put(m.id, m)

    def add_attempt(self, *, message_id: str, attempt: int, at: float, status_code: int | None,
                    error: str | None) -> None:
        self.a.put(next(self.seq), {"message_id": message_id, "attempt": attempt, "at": at,
                                    "status_code": status_code, "error": error})

    def attempts(self, message_id: str) -> list[dict[str, object]]:
        return [{k: v for k, v in row.items() if k != "message_id"}
                for _, row in sorted(self.a.items(), key=lambda kv: kv[0])
                if row["message_id"] == message_id]

    def messages(self, merchant_id: str, *, endpoint_id: str | None = None,
                 status: str | None = None, limit: int = 50) -> list[Message]:
        rows = sorted((m for m in self.m.rows() if m.merchant_id == merchant_id
                       and (endpoint_id is None or m.endpoint_id == endpoint_id)
                       and (status is None or m.status.value == status)),
                      key=lambda m: (m.created_at, m.id), reverse=True)
        return rows[:limit]


class MemNotifications:
    def __init__(self, db: Table[str, Notification]):
        self.t = db

    def add(self, n: Notification) -> bool:
        key = (n.event_id, n.recipient_kind, n.channel)
        if n.id in self.t or any((x.event_id, x.recipient_kind, x.channel) == key
                                 for x in self.t.rows()):
            return False
        self.t.put(n.id, n)
        return True

    def due(self, now: float, limit: int, *,
            lease_s: float | None = None) -> list[Notification]:
        return claim_due(self.t, NoticeStatus.PENDING, now, limit, lease_s)

    def save(self, n: Notification) -> None:
        if n.id in self.t:
            self.t.put(n.id, n)

    def list(self, *, status: str | None = None, recipient_id: str | None = None,
             limit: int = 100) -> list[Notification]:
        rows = sorted((n for n in self.t.rows()
                       if (status is None or n.status.value == status)
                       and (recipient_id is None or n.recipient_id == recipient_id)),
                      key=lambda n: (n.created_at, n.id))
        return rows[:limit]


class MemSandboxCaptures:
    def __init__(self, db: Table[str, Capture]):
        self.t = db

    def add(self, c: Capture) -> None:
        self.t.put(c.id, c)

    def list(self, *, channel: str | None = None, subject_id: str | None = None,
             limit: int = 50) -> list[Capture]:
        rows = sorted((c for c in self.t.rows()
                       if (channel is None or c.channel.value == channel)
                       and (subject_id is None or c.subject_id == subject_id)),
                      key=lambda c: (c.created_at, c.id), reverse=True)
        return rows[:limit]
