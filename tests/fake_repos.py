"""In-memory repositories for ``tests.fakes.FakeUnitOfWork``: one class per port of
``lastmile.app.ports``, each over ``Table``s that stage writes until the unit commits.

Reads see what other units committed (like PostgreSQL's READ COMMITTED) plus this unit's
own writes; a compare-and-set save compares against that same view, as ``UPDATE ... WHERE
version = ?`` does. Ordering and filters follow ``adapters/db/repositories*.py``;
``tests/unit/app/test_fake_repositories.py`` runs the same behaviours against both.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from lastmile.app.events import Event
from lastmile.app.ports import ApiKeyRecord, IdempotencyRecord, OutboxEntry
from lastmile.core.delivery.model import Delivery, DriveQuote
from lastmile.core.delivery.notices import NoticeStatus, Notification
from lastmile.core.errors import Conflict
from lastmile.core.model import Consumer, Courier, CourierStatus, Merchant, Region
from lastmile.core.offers import Offer, OfferStatus
from lastmile.core.orders import Order, OrderStatus
from lastmile.core.webhooks import Endpoint, Message, MessageStatus

K = TypeVar("K")
V = TypeVar("V")


class Table(Generic[K, V]):
    """Committed rows (shared by every unit) and this unit's staged writes over them."""

    def __init__(self, committed: dict[K, V]):
        self.committed = committed
        self.staged: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self.staged[key] if key in self.staged else self.committed.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.staged or key in self.committed

    def put(self, key: K, value: V) -> None:
        self.staged[key] = value

    def rows(self) -> list[V]:
        return list({**self.committed, **self.staged}.values())

    def items(self) -> list[tuple[K, V]]:
        return list({**self.committed, **self.staged}.items())

    def commit(self) -> None:
        self.committed.update(self.staged)
        self.staged.clear()

    def rollback(self) -> None:
        self.staged.clear()


@dataclass
class MemoryDb:
    """What the units of one factory share: committed rows by table, and sequences
    (which, like SQL sequences, do not roll back)."""

    tables: dict[str, dict[Any, Any]] = field(default_factory=dict)
    seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def table(self, name: str) -> Table[Any, Any]:
        return Table(self.tables.setdefault(name, {}))


def cas_save(table: Table[str, Any], value: Any, what: str) -> Any:
    """The versioned-aggregate contract (HELPERS.md): a value with a ``version`` is saved
    only over the stored version it was read at, and comes back one version on; a value
    without one is stored as is (the blind save of today's SQL repositories)."""
    if not hasattr(value, "version"):
        if value.id in table:  # an UPDATE of a missing row changes nothing
            table.put(value.id, value)
        return None
    stored = table.get(value.id)
    if stored is None or stored.version != value.version:
        got = None if stored is None else stored.version
        raise Conflict("concurrent_update",
                       f"{what} {value.id} changed meanwhile (expected version "
                       f"{value.version}, stored {got}); retry with the current state")
    saved = replace(value, version=value.version + 1)
    table.put(value.id, saved)
    return saved


class MemRegions:
    def __init__(self, db: Table[str, Region]):
        self.t = db

    def add(self, region: Region) -> None:
        _insert(self.t, region.id, region)

    def get(self, region_id: str) -> Region | None:
        return self.t.get(region_id)

    def list(self) -> list[Region]:
        return sorted(self.t.rows(), key=lambda r: r.id)


class MemMerchants:
    def __init__(self, db: Table[str, Merchant]):
        self.t = db

    def add(self, merchant: Merchant) -> None:
        _insert(self.t, merchant.id, merchant)

    def save(self, merchant: Merchant) -> Merchant | None:
        return cas_save(self.t, merchant, "merchant")  # type: ignore[no-any-return]

    def get(self, merchant_id: str) -> Merchant | None:
        return self.t.get(merchant_id)

    def in_box(self, region_id: str, box: tuple[float, float, float, float]) -> list[Merchant]:
        return [m for m in self.list_region(region_id)
                if box[0] <= m.location.lat <= box[2] and box[1] <= m.location.lng <= box[3]]

    def list_region(self, region_id: str) -> list[Merchant]:
        return sorted((m for m in self.t.rows() if m.region_id == region_id), key=lambda m: m.id)


class MemConsumers:
    def __init__(self, db: Table[str, Consumer]):
        self.t = db

    def add(self, consumer: Consumer) -> None:
        _insert(self.t, consumer.id, consumer)

    def get(self, consumer_id: str) -> Consumer | None:
        return self.t.get(consumer_id)


class MemCouriers:
    def __init__(self, db: Table[str, Courier]):
        self.t = db

    def add(self, courier: Courier) -> None:
        _insert(self.t, courier.id, courier)

    def save(self, courier: Courier) -> Courier | None:
        return cas_save(self.t, courier, "courier")  # type: ignore[no-any-return]

    def get(self, courier_id: str) -> Courier | None:
        return self.t.get(courier_id)

    def list_region(self, region_id: str, *, on_shift_only: bool = False) -> list[Courier]:
        return sorted((c for c in self.t.rows() if c.region_id == region_id
                       and not (on_shift_only and c.status is CourierStatus.OFFLINE)),
                      key=lambda c: c.id)

    def count_by_status(self, region_id: str) -> dict[str, int]:
        return _count(c.status.value for c in self.list_region(region_id))


class MemOrders:
    def __init__(self, db: Table[str, Order]):
        self.t = db

    def add(self, order: Order) -> None:
        _insert(self.t, order.id, order)

    def save(self, order: Order, *, expected_version: int) -> None:
        stored = self.t.get(order.id)
        if stored is None or stored.version != expected_version:
            raise Conflict("concurrent_update",
                           f"order {order.id} changed meanwhile (expected version "
                           f"{expected_version}); retry with the current state")
        self.t.put(order.id, order)

    def get(self, order_id: str) -> Order | None:
        return self.t.get(order_id)

    def list(self, *, region_id: str | None = None, consumer_id: str | None = None,
             merchant_id: str | None = None, courier_id: str | None = None,
             statuses: Sequence[OrderStatus] | None = None, limit: int = 100,
             oldest_first: bool = False) -> list[Order]:
        wanted = {"region_id": region_id, "consumer_id": consumer_id,
                  "merchant_id": merchant_id, "courier_id": courier_id}
        rows = [o for o in self.t.rows()
                if all(v is None or getattr(o, k) == v for k, v in wanted.items())
                and (not statuses or o.status in statuses)]
        rows.sort(key=lambda o: (o.placed_at, o.id), reverse=not oldest_first)
        return rows[:limit]

    def get_many(self, order_ids: Collection[str]) -> dict[str, Order]:
        found = (self.t.get(i) for i in order_ids)
        return {o.id: o for o in found if o is not None}

    def count_by_status(self, region_id: str) -> dict[str, int]:
        return _count(o.status.value for o in self.t.rows() if o.region_id == region_id)


class MemEvents:
    def __init__(self, db: Table[int, Event], seq: Iterator[int]):
        self.t, self.seq = db, seq

    def append(self, event: Event) -> None:
        if any(e.event_id == event.event_id for e in self.t.rows()):
            raise Conflict("duplicate_event", f"event {event.event_id} is already recorded")
        self.t.put(next(self.seq), event)

    def _in_order(self) -> list[Event]:
        return [e for _, e in sorted(self.t.items(), key=lambda kv: kv[0])]

    def for_subject(self, subject_id: str) -> list[Event]:
        return [e for e in self._in_order() if e.subject_id == subject_id]

    def of_types(self, region_id: str, types: Collection[str], *, since: float,
                 limit: int = 100_000) -> list[Event]:
        return [e for e in self._in_order() if e.region_id == region_id and e.type in types
                and e.occurred_at >= since][:limit]


class MemOutbox:
    """Rows are ``(event, sent_at)`` by sequence number."""

    def __init__(self, db: Table[int, tuple[Event, float | None]], seq: Iterator[int]):
        self.t, self.seq = db, seq

    def add(self, event: Event) -> None:
        self.t.put(next(self.seq), (event, None))

    def pending(self, limit: int) -> list[OutboxEntry]:
        rows = sorted((s, e) for s, (e, sent) in self.t.items() if sent is None)
        return [OutboxEntry(seq=s, event=e) for s, e in rows[:limit]]

    def mark_sent(self, seqs: Sequence[int], at: float) -> None:
        for s in seqs:
            row = self.t.get(s)
            if row is not None:
                self.t.put(s, (row[0], at))


class MemInbox:
    def __init__(self, db: Table[tuple[str, str], bool]):
        self.t = db

    def seen(self, consumer: str, event_id: str) -> bool:
        if (consumer, event_id) in self.t:
            return True
        self.t.put((consumer, event_id), True)
        return False


class MemIdempotency:
    def __init__(self, db: Table[tuple[str, str], IdempotencyRecord]):
        self.t = db

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        return self.t.get((scope, key))

    def add(self, record: IdempotencyRecord) -> None:
        if (record.scope, record.key) in self.t:
            raise Conflict("idempotency_key_taken",
                           f"Idempotency-Key {record.key!r} is being used by a concurrent request",
                           field="Idempotency-Key")
        self.t.put((record.scope, record.key), record)


class MemApiKeys:
    def __init__(self, db: Table[str, ApiKeyRecord]):
        self.t = db

    def add(self, record: ApiKeyRecord) -> None:
        if any(r.key_hash == record.key_hash for r in self.t.rows()):
            raise Conflict("duplicate_key", "an API key with this hash exists")
        _insert(self.t, record.key_id, record)

    def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return next((r for r in self.t.rows() if r.key_hash == key_hash), None)


class MemOffers:
    def __init__(self, db: Table[str, Offer]):
        self.t = db

    def add(self, offer: Offer) -> None:
        _insert(self.t, offer.id, offer)

    def save(self, offer: Offer) -> Offer | None:
        return cas_save(self.t, offer, "offer")  # type: ignore[no-any-return]

    def get(self, offer_id: str) -> Offer | None:
        return self.t.get(offer_id)

    def _pending(self, keep: Callable[[Offer], bool]) -> list[Offer]:
        return sorted((o for o in self.t.rows() if o.status is OfferStatus.PENDING and keep(o)),
                      key=lambda o: (o.created_at, o.id))

    def pending_for_courier(self, courier_id: str) -> list[Offer]:
        return self._pending(lambda o: o.courier_id == courier_id)

    def pending_for_order(self, order_id: str) -> list[Offer]:
        return self._pending(lambda o: order_id in o.order_ids)

    def pending_in_region(self, region_id: str) -> list[Offer]:
        return self._pending(lambda o: o.region_id == region_id)


class MemBannedDevices:
    def __init__(self, db: Table[str, tuple[str, float, str]]):
        self.t = db

    def ban(self, device_id: str, *, reason: str, at: float, by: str) -> bool:
        if device_id in self.t:
            return False
        self.t.put(device_id, (reason, at, by))
        return True

    def among(self, device_ids: Collection[str]) -> frozenset[str]:
        return frozenset(d for d in device_ids if d in self.t)


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

    def save(self, d: Delivery) -> None:
        row = self.t.get(d.id)
        if row is not None:
            self.t.put(d.id, (d, row[1]))

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


def _insert(table: Table[Any, Any], key: Any, value: Any) -> None:
    """A primary key taken is an IntegrityError in SQL; here a Conflict, so a test that
    relies on inserting twice fails on both."""
    if key in table:
        raise Conflict("duplicate_key", f"{key!r} already exists")
    table.put(key, value)


def _count(values: Iterator[str] | Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


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
        _insert(self.e, e.id, e)

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
