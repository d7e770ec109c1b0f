"""In-memory repositories for ``tests.fakes.FakeUnitOfWork``: one class per port of
``lastmile.app.ports``, each over ``Table``s that stage writes until the unit commits.

Reads see what other units committed (like PostgreSQL's READ COMMITTED) plus this unit's
own writes; a compare-and-set save compares against that same view, as ``UPDATE ... WHERE
version = ?`` does. Ordering and filters follow ``adapters/db/repositories*.py``;
``tests/service/test_repository_contract.py`` runs the same behaviours against both;
the Drive repositories are in ``fake_repos_drive``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from lastmile.app.events import Event
from lastmile.app.ports import ApiKeyRecord, IdempotencyRecord, OutboxEntry, PingView
from lastmile.core.errors import Conflict
from lastmile.core.geo import Point
from lastmile.core.leases import Lease
from lastmile.core.model import Consumer, Courier, CourierStatus, Merchant, Region
from lastmile.core.offers import Offer, OfferStatus
from lastmile.core.orders import Order, OrderStatus
from lastmile.core.tenancy import DEFAULT_TENANT, Tenant

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


class MemTenants:
    """Not scoped: the fake unit of work has one tenant's view (tenant isolation is the
    SQL layer's, tested on SQLite and PostgreSQL)."""

    def __init__(self, db: Table[str, Tenant]):
        self.t = db

    def add(self, tenant: Tenant) -> None:
        insert(self.t, tenant.id, tenant)

    def get(self, tenant_id: str) -> Tenant | None:
        return self.t.get(tenant_id)

    def save(self, tenant: Tenant) -> Tenant:
        return cas_save(self.t, tenant, "tenant")  # type: ignore[no-any-return]

    def list(self) -> list[Tenant]:
        return sorted(self.t.rows(), key=lambda r: r.id)


class MemRegions:
    def __init__(self, db: Table[str, Region]):
        self.t = db

    def add(self, region: Region) -> None:
        insert(self.t, region.id, region)

    def get(self, region_id: str) -> Region | None:
        return self.t.get(region_id)

    def list_owned(self) -> list[tuple[str, Region]]:
        return [(DEFAULT_TENANT, r) for r in self.list()]  # one tenant's view (see MemTenants)

    def list(self) -> list[Region]:
        return sorted(self.t.rows(), key=lambda r: r.id)


class MemMerchants:
    def __init__(self, db: Table[str, Merchant]):
        self.t = db

    def add(self, merchant: Merchant) -> None:
        insert(self.t, merchant.id, merchant)

    def save(self, merchant: Merchant) -> Merchant | None:
        return cas_save(self.t, merchant, "merchant")  # type: ignore[no-any-return]

    def get(self, merchant_id: str) -> Merchant | None:
        return self.t.get(merchant_id)

    def in_box(self, region_id: str, box: tuple[float, float, float, float]) -> list[Merchant]:
        return [m for m in self.list_region(region_id)
                if box[0] <= m.location.lat <= box[2] and box[1] <= m.location.lng <= box[3]]

    def list_region(self, region_id: str) -> list[Merchant]:
        return sorted((m for m in self.t.rows() if m.region_id == region_id), key=lambda m: m.id)

    def prep_times(self, region_id: str) -> dict[str, int]:
        return {m.id: m.prep_time_s for m in self.list_region(region_id)}


class MemConsumers:
    def __init__(self, db: Table[str, Consumer]):
        self.t = db

    def add(self, consumer: Consumer) -> None:
        insert(self.t, consumer.id, consumer)

    def get(self, consumer_id: str) -> Consumer | None:
        return self.t.get(consumer_id)

    def by_phone(self, phone: str) -> Consumer | None:
        return next((c for c in self.t.rows() if c.phone == phone), None)


class MemCouriers:
    def __init__(self, db: Table[str, Courier], *, orders: Table[str, Order],
                 banned: Table[str, tuple[str, float, str]]):
        self.t = db
        self._orders = orders
        self._banned = banned

    def add(self, courier: Courier) -> None:
        insert(self.t, courier.id, courier)

    def save(self, courier: Courier) -> Courier | None:
        return cas_save(self.t, courier, "courier")  # type: ignore[no-any-return]

    def get(self, courier_id: str) -> Courier | None:
        return self.t.get(courier_id)

    def for_ping(self, courier_id: str, device_ids: Collection[str]) -> PingView | None:
        courier = self.t.get(courier_id)
        if courier is None:
            return None
        first = self._orders.get(courier.active_order_ids[0]) if courier.active_order_ids \
            else None
        return PingView(courier=courier, first_order_status=None if first is None else first.status,
                        any_banned=any(d in self._banned for d in device_ids))

    def list_region(self, region_id: str, *, on_shift_only: bool = False) -> list[Courier]:
        return sorted((c for c in self.t.rows() if c.region_id == region_id
                       and not (on_shift_only and c.status is CourierStatus.OFFLINE)),
                      key=lambda c: c.id)

    def count_by_status(self, region_id: str) -> dict[str, int]:
        return count(c.status.value for c in self.list_region(region_id))


class MemOrders:
    def __init__(self, db: Table[str, Order]):
        self.t = db

    def add(self, order: Order) -> None:
        insert(self.t, order.id, order)

    def save(self, order: Order, *, expected_version: int) -> None:
        stored = self.t.get(order.id)
        if stored is None or stored.version != expected_version:
            raise Conflict("concurrent_update",
                           f"order {order.id} changed meanwhile (expected version "
                           f"{expected_version}); retry with the current state")
        self.t.put(order.id, order)

    def get(self, order_id: str) -> Order | None:
        return self.t.get(order_id)

    def status_of(self, order_id: str) -> OrderStatus | None:
        order = self.t.get(order_id)
        return None if order is None else order.status

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

    def dropoffs(self, region_id: str, *, statuses: Collection[OrderStatus],
                 limit: int) -> tuple[Point, ...]:
        rows = sorted((o for o in self.t.rows() if o.region_id == region_id
                       and o.status in statuses), key=lambda o: (o.placed_at, o.id))
        return tuple(o.dropoff for o in rows[:limit])

    def get_many(self, order_ids: Collection[str]) -> dict[str, Order]:
        found = (self.t.get(i) for i in order_ids)
        return {o.id: o for o in found if o is not None}

    def count_of_merchant(self, merchant_id: str, *, statuses: Collection[OrderStatus],
                          excluding: str | None = None, limit: int) -> int:
        return min(limit, sum(1 for o in self.t.rows() if o.merchant_id == merchant_id
                              and o.status in statuses and o.id != excluding))

    def count_by_status(self, region_id: str, *,
                        statuses: Collection[str] | None = None) -> dict[str, int]:
        return count(o.status.value for o in self.t.rows() if o.region_id == region_id
                     and (statuses is None or o.status.value in statuses))


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
    """Events by sequence number. Fanning rows out (which takes them out of ``pending``) is
    ``EventDeliveries``' work, which has no fake: no use case on the fake relays. A relay to
    a durable log marks rows sent (``sent``); one fake unit of work never competes for them."""

    def __init__(self, db: Table[int, Event], seq: Iterator[int], sent: Table[int, bool]):
        self.t, self.seq, self.sent = db, seq, sent

    def add(self, event: Event) -> None:
        self.t.put(next(self.seq), event)

    def pending(self, limit: int) -> list[OutboxEntry]:
        return [OutboxEntry(seq=s, event=e) for s, e in sorted(self.t.items())
                if s not in self.sent][:limit]

    def claim_head(self, limit: int) -> list[OutboxEntry]:
        return self.pending(limit)

    def mark_sent(self, seqs: Sequence[int], at: float) -> None:
        for seq in seqs:
            self.sent.put(seq, True)


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
        insert(self.t, record.key_id, record)

    def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return next((r for r in self.t.rows() if r.key_hash == key_hash), None)

    def revoke_subject(self, role: str, subject_id: str) -> int:
        live = [r for r in self.t.rows()
                if r.role == role and r.subject_id == subject_id and not r.revoked]
        for r in live:
            self.t.put(r.key_id, replace(r, revoked=True))
        return len(live)


class MemOffers:
    def __init__(self, db: Table[str, Offer]):
        self.t = db

    def add(self, offer: Offer) -> None:
        insert(self.t, offer.id, offer)

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

    def accepted_for_order(self, order_id: str) -> Offer | None:
        done = [o for o in self.t.rows()
                if o.status is OfferStatus.ACCEPTED and order_id in o.order_ids]
        return max(done, key=lambda o: (o.decided_at or 0.0, o.id)) if done else None

    def pending_expired(self, now: float, limit: int, *,
                        after: tuple[float, str] | None = None) -> list[Offer]:
        due = sorted((o for o in self.t.rows()
                      if o.status is OfferStatus.PENDING and o.expires_at <= now
                      and (after is None or (o.expires_at, o.id) > after)),
                     key=lambda o: (o.expires_at, o.id))
        return due[:limit]


class MemPinAttempts:
    """Wrong-PIN attempts per order; staged like every table (rollback forgets one)."""

    def __init__(self, db: Table[str, int]):
        self.t = db

    def count_attempt(self, order_id: str, at: float) -> int:
        n = (self.t.get(order_id) or 0) + 1
        self.t.put(order_id, n)
        return n

    def failures(self, order_id: str) -> int:
        return self.t.get(order_id) or 0

    def reset(self, order_id: str) -> int:
        n = self.t.get(order_id) or 0
        self.t.put(order_id, 0)
        return n


class MemLeases:
    """Leases and worker heartbeats; ``put`` is a compare-and-set on the token, like SQL's."""

    def __init__(self, leases: Table[str, Lease], workers: Table[str, float]):
        self.t = leases
        self.workers = workers

    def get(self, name: str, *, lock: bool = False) -> Lease | None:
        return self.t.get(name)

    def put(self, lease: Lease, *, expected_token: int | None) -> None:
        current = self.t.get(lease.name)
        if (current.token if current is not None else None) != expected_token:
            raise Conflict("concurrent_update", f"lease {lease.name} changed meanwhile",
                           current_state="changed")
        self.t.put(lease.name, lease)

    def heartbeat(self, worker_id: str, now: float, *, forget_before: float) -> None:
        self.workers.put(worker_id, now)  # old rows stay: live_workers filters them out

    def live_workers(self, since: float) -> list[str]:
        return sorted(w for w, seen in self.workers.items() if seen >= since)

    def forget_worker(self, worker_id: str) -> None:
        self.workers.put(worker_id, float("-inf"))  # staged tables keep rows: never live


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


def insert(table: Table[Any, Any], key: Any, value: Any) -> None:
    """A primary key taken is an IntegrityError in SQL; here a Conflict, so a test that
    relies on inserting twice fails on both."""
    if key in table:
        raise Conflict("duplicate_key", f"{key!r} already exists")
    table.put(key, value)


def count(values: Iterator[str] | Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


class MemLedger:
    """``SqlLedger`` in memory: append-only, one transaction per key."""

    def __init__(self, db: Table[str, Any]):
        self.t = db

    def add(self, posted: Any) -> bool:
        if self.by_key(posted.transaction.key) is not None or posted.id in self.t:
            return False
        self.t.put(posted.id, posted)
        return True

    def add_many(self, posted: Sequence[Any]) -> list[Any]:
        return [p for p in posted if self.add(p)]

    def _all(self) -> list[Any]:
        return sorted(self.t.rows(), key=lambda p: (p.created_at, p.id))

    def by_key(self, key: str) -> Any:
        return next((p for p in self.t.rows() if p.transaction.key == key), None)

    def of_order(self, order_id: str) -> list[Any]:
        return [p for p in self._all() if p.transaction.order_id == order_id]

    def rows(self) -> list[Any]:
        from lastmile.core.ledger.audit import PostingRow

        return [PostingRow(transaction_id=p.id, kind=p.transaction.kind.value,
                           order_id=p.transaction.order_id, currency=q.currency,
                           account=q.account, amount_minor=q.amount_minor)
                for p in self._all() for q in p.transaction.postings]

    def balances(self, account: str | None = None) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for r in self.rows():
            if account is None or r.account == account:
                out[(r.account, r.currency)] = out.get((r.account, r.currency), 0) + r.amount_minor
        return out

    def statement(self, account: str, *, currency: str | None = None,
                  limit: int = 100) -> list[Any]:
        from lastmile.core.ledger.entries import StatementLine

        lines = [StatementLine(transaction_id=p.id, key=p.transaction.key,
                               kind=p.transaction.kind, order_id=p.transaction.order_id,
                               account=q.account, currency=q.currency,
                               amount_minor=q.amount_minor, created_at=p.created_at,
                               memo=p.transaction.memo)
                 for p in self._all() for q in p.transaction.postings
                 if q.account == account and (currency is None or q.currency == currency)]
        return lines[:limit]

    def postings_between(self, start: float | None = None,
                         end: float | None = None) -> list[Any]:
        from lastmile.core.ledger.entries import StatementLine

        return [StatementLine(transaction_id=p.id, key=p.transaction.key,
                              kind=p.transaction.kind, order_id=p.transaction.order_id,
                              account=q.account, currency=q.currency,
                              amount_minor=q.amount_minor, created_at=p.created_at,
                              memo=p.transaction.memo)
                for p in self._all() for q in p.transaction.postings
                if (start is None or p.created_at >= start)
                and (end is None or p.created_at < end)]

class MemRefundRequests:
    """``SqlRefundRequests`` in memory: one request per idempotency key."""

    def __init__(self, db: Table[str, Any]):
        self.t = db

    def add(self, case: Any) -> bool:
        if self.by_key(case.idempotency_key) is not None or case.id in self.t:
            return False
        self.t.put(case.id, case)
        return True

    def get(self, case_id: str) -> Any:
        return self.t.get(case_id)

    def by_key(self, key: str) -> Any:
        return next((c for c in self.t.rows() if c.idempotency_key == key), None)

    def list(self, *, status: Any = None, limit: int = 100) -> list[Any]:
        found = sorted(self.t.rows(), key=lambda c: (c.created_at, c.id))
        return [c for c in found if status is None or c.status == status][:limit]

    def given_since(self, consumer_id: str, since: float, currency: str) -> int:
        return sum(c.decision.amount.amount_minor for c in self.t.rows()
                   if c.consumer_id == consumer_id and c.created_at >= since
                   and c.status.value == "approved" and c.decision.amount.currency == currency)

    def decide(self, case: Any, *, expected: Any) -> bool:
        stored = self.t.get(case.id)
        if stored is None or stored.status != expected:
            return False
        self.t.put(case.id, case)
        return True
