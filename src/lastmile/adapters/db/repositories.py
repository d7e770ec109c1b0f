"""SQL repositories over one connection (the unit of work's transaction)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lastmile.adapters.db import mapping as m
from lastmile.adapters.db import tables as t
from lastmile.adapters.db.prepared import WHERE, insert_into, select_where, update_where
from lastmile.adapters.db.writes import insert_or_skip
from lastmile.adapters.telemetry.tracing import with_trace_context
from lastmile.app.events import Event
from lastmile.app.ports import ApiKeyRecord, IdempotencyRecord, OutboxEntry, PingView
from lastmile.core.errors import Conflict
from lastmile.core.geo import Point
from lastmile.core.model import Consumer, Courier, CourierStatus, Merchant, Region
from lastmile.core.offers import Offer, OfferStatus
from lastmile.core.orders import Order, OrderStatus
from lastmile.core.tenancy import Tenant, TenantKind


class _Versioned(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)


def compare_and_set(conn: Connection, table: sa.Table, value: V, row: dict[str, Any], *,
                    what: str, state: sa.ColumnElement[Any] | None = None) -> V:
    """Write ``row`` only where the stored version is still ``value.version``; store the next
    version and return ``value`` carrying it. Otherwise another transaction saved first (or
    the row is gone): raise ``Conflict("concurrent_update")`` with the stored state."""
    c = table.c
    result = conn.execute(update_where(table, "id", "version"), {
        **row, "version": value.version + 1, WHERE + "id": value.id,
        WHERE + "version": value.version})
    if result.rowcount == 1:
        return replace(value, version=value.version + 1)  # type: ignore[type-var]
    columns = [c.version] if state is None else [c.version, state]
    stored = conn.execute(sa.select(*columns).where(c.id == value.id)).first()
    raise Conflict(
        "concurrent_update",
        f"{what} {value.id} changed meanwhile (expected version {value.version}, stored "
        f"{stored[0] if stored else 'none'}); retry with the current state",
        current_version=stored[0] if stored else None,
        current_state=("missing" if stored is None else
                       stored[1] if state is not None else f"version {stored[0]}"),
    )


def _by_status(table: sa.Table) -> sa.Select[Any]:
    c = table.c
    return sa.select(c.status, sa.func.count()).where(
        c.region_id == sa.bindparam("region_id")).group_by(c.status)


_COURIERS_BY_STATUS = _by_status(t.couriers)
_ORDERS_BY_STATUS = _by_status(t.orders)
_ORDERS_IN_STATUSES_BY_STATUS = _ORDERS_BY_STATUS.where(
    t.orders.c.status.in_(sa.bindparam("statuses", expanding=True)))

# The merchant's orders in some statuses, up to a limit: ids only, on ix_orders_merchant.
_MERCHANT_ORDERS_COUNT = sa.select(sa.func.count()).select_from(
    sa.select(t.orders.c.id).where(
        t.orders.c.merchant_id == sa.bindparam("merchant_id"),
        t.orders.c.status.in_(sa.bindparam("statuses", expanding=True)),
        t.orders.c.id != sa.bindparam("excluding"))
    .limit(sa.bindparam("limit")).subquery())

_ORDER_STATUS = sa.select(t.orders.c.status).where(t.orders.c.id == sa.bindparam("id"))


def _for_ping(device_match: Any) -> sa.Select[Any]:
    """A location batch's one read: the courier, its first order's status, any banned
    device (``device_match`` on ``banned_devices.device_id``)."""
    return sa.select(
        t.couriers,
        sa.select(t.orders.c.status).where(
            t.orders.c.id == t.couriers.c.active_order_ids[0].as_string()
        ).scalar_subquery().label("first_order_status"),
        sa.exists().where(device_match).label("any_banned"),
    ).where(t.couriers.c.id == sa.bindparam("id"))


# A batch almost always comes from one device: equality there, as an expanding IN costs
# its rendering on every execution (~40 % of this statement's time).
_FOR_PING_ONE = _for_ping(t.banned_devices.c.device_id == sa.bindparam("device_id"))
_FOR_PING_MANY = _for_ping(t.banned_devices.c.device_id.in_(
    sa.bindparam("device_ids", expanding=True)))
# Prepared statements of the hot paths (each dispatch round, offer and ping): a statement
# built per call costs its cache key and tenant scoping on every execution, ~3x the
# execution of a prepared one.
_PREP_TIMES = sa.select(t.merchants.c.id, t.merchants.c.prep_time_s).where(
    t.merchants.c.region_id == sa.bindparam("region_id"))
_COURIERS_IN_REGION = sa.select(t.couriers).where(
    t.couriers.c.region_id == sa.bindparam("region_id")).order_by(t.couriers.c.id)
_COURIERS_ON_SHIFT = _COURIERS_IN_REGION.where(
    t.couriers.c.status != CourierStatus.OFFLINE.value)
# The orders in hand, with the document as its stored text (decoded here, see _decoded).
_RAW_ORDER = (*(c for c in t.orders.c if c.name != "doc"),
              sa.cast(t.orders.c.doc, sa.Text).label("doc"))
_ORDERS_AMONG = sa.select(*_RAW_ORDER).where(
    t.orders.c.id.in_(sa.bindparam("ids", expanding=True)))
# Raw order row (every column, the document as text) -> its Order: a content-addressed
# memo, so it can never answer for a changed row. Each dispatch round decodes every order
# in the couriers' hands, and most did not change since the round before (30 s).
# Cleared when full: ~10,000 orders of a few kB each (the row's text and its Order).
_DECODED: dict[tuple[Any, ...], Order] = {}
_MAX_DECODED = 10_000
_PENDING = t.offers.c.status == OfferStatus.PENDING.value
_OFFERS_PENDING_FOR_COURIER = sa.select(t.offers).where(
    t.offers.c.courier_id == sa.bindparam("courier_id"), _PENDING).order_by(
    t.offers.c.created_at, t.offers.c.id)
_OFFERS_PENDING_IN_REGION = sa.select(t.offers).where(
    t.offers.c.region_id == sa.bindparam("region_id"), _PENDING).order_by(
    t.offers.c.created_at, t.offers.c.id)
_OFFERS_PENDING_FOR_ORDER = sa.select(t.offers).join(
    t.offer_orders, t.offer_orders.c.offer_id == t.offers.c.id).where(
    t.offer_orders.c.order_id == sa.bindparam("order_id"), _PENDING)
_BANNED_AMONG = sa.select(t.banned_devices.c.device_id).where(
    t.banned_devices.c.device_id.in_(sa.bindparam("ids", expanding=True)))


class _Repo:
    def __init__(self, conn: Connection):
        self.conn = conn

    def _one(self, stmt: sa.Select[Any],
             params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        row = self.conn.execute(stmt, params).mappings().first()
        return dict(row) if row is not None else None

    def _by(self, table: sa.Table, **where: Any) -> dict[str, Any] | None:
        """The row of ``table`` where each column equals its value (a prepared select)."""
        return self._one(select_where(table, *where), where)


class SqlTenants(_Repo):
    def add(self, tenant: Tenant) -> None:
        self.conn.execute(insert_into(t.tenants), _tenant_row(tenant))

    def get(self, tenant_id: str) -> Tenant | None:
        row = self._by(t.tenants, id=tenant_id)
        return _tenant_from(row) if row else None

    def save(self, tenant: Tenant) -> Tenant:
        row = _tenant_row(tenant)
        del row["tenant_id"]
        return compare_and_set(self.conn, t.tenants, tenant, row, what="tenant")

    def list(self) -> list[Tenant]:
        rows = self.conn.execute(sa.select(t.tenants).order_by(t.tenants.c.id)).mappings()
        return [_tenant_from(dict(r)) for r in rows]


def _tenant_row(tenant: Tenant) -> dict[str, Any]:
    return {"tenant_id": tenant.id, "id": tenant.id, "name": tenant.name,
            "kind": tenant.kind.value, "config": dict(tenant.config),
            "created_at": tenant.created_at, "version": tenant.version}


def _tenant_from(row: dict[str, Any]) -> Tenant:
    return Tenant(id=row["id"], name=row["name"], kind=TenantKind(row["kind"]),
                  config=dict(row["config"] or {}), created_at=row["created_at"],
                  version=row["version"])


class SqlRegions(_Repo):
    def add(self, region: Region) -> None:
        self.conn.execute(insert_into(t.regions), m.region_row(region))

    def get(self, region_id: str) -> Region | None:
        row = self._by(t.regions, id=region_id)
        return m.region_from(row) if row else None

    def list_owned(self) -> list[tuple[str, Region]]:
        rows = self.conn.execute(sa.select(t.regions).order_by(t.regions.c.id)).mappings()
        return [(r["tenant_id"], m.region_from(dict(r))) for r in rows]

    def list(self) -> list[Region]:
        rows = self.conn.execute(sa.select(t.regions).order_by(t.regions.c.id)).mappings()
        return [m.region_from(dict(r)) for r in rows]


class SqlMerchants(_Repo):
    def add(self, merchant: Merchant) -> None:
        self.conn.execute(insert_into(t.merchants), m.merchant_row(merchant))

    def save(self, merchant: Merchant) -> Merchant:
        return compare_and_set(self.conn, t.merchants, merchant, m.merchant_row(merchant),
                               what="merchant")

    def get(self, merchant_id: str) -> Merchant | None:
        row = self._by(t.merchants, id=merchant_id)
        return m.merchant_from(row) if row else None

    def in_box(self, region_id: str, box: tuple[float, float, float, float]) -> list[Merchant]:
        c = t.merchants.c
        stmt = sa.select(t.merchants).where(
            c.region_id == region_id, c.lat.between(box[0], box[2]), c.lng.between(box[1], box[3])
        )
        return [m.merchant_from(dict(r)) for r in self.conn.execute(stmt).mappings()]

    def list_region(self, region_id: str) -> list[Merchant]:
        stmt = sa.select(t.merchants).where(t.merchants.c.region_id == region_id).order_by(
            t.merchants.c.id)
        return [m.merchant_from(dict(r)) for r in self.conn.execute(stmt).mappings()]

    def prep_times(self, region_id: str) -> dict[str, int]:
        return {r.id: int(r.prep_time_s)
                for r in self.conn.execute(_PREP_TIMES, {"region_id": region_id})}


class SqlConsumers(_Repo):
    def add(self, consumer: Consumer) -> None:
        self.conn.execute(insert_into(t.consumers), m.consumer_row(consumer))

    def get(self, consumer_id: str) -> Consumer | None:
        row = self._by(t.consumers, id=consumer_id)
        return m.consumer_from(row) if row else None

    def by_phone(self, phone: str) -> Consumer | None:
        row = self._by(t.consumers, phone=phone)
        return m.consumer_from(row) if row else None


class SqlCouriers(_Repo):
    def add(self, courier: Courier) -> None:
        self.conn.execute(insert_into(t.couriers), m.courier_row(courier))

    def save(self, courier: Courier) -> Courier:
        return compare_and_set(self.conn, t.couriers, courier, m.courier_row(courier),
                               what="courier", state=t.couriers.c.status)

    def get(self, courier_id: str) -> Courier | None:
        row = self._by(t.couriers, id=courier_id)
        return m.courier_from(row) if row else None

    def for_ping(self, courier_id: str, device_ids: Collection[str]) -> PingView | None:
        if len(device_ids) == 1:
            row = self._one(_FOR_PING_ONE, {"id": courier_id, "device_id": next(iter(device_ids))})
        else:
            row = self._one(_FOR_PING_MANY, {"id": courier_id, "device_ids": sorted(device_ids)})
        if row is None:
            return None
        status = row["first_order_status"]
        return PingView(courier=m.courier_from(row), any_banned=bool(row["any_banned"]),
                        first_order_status=None if status is None else OrderStatus(status))

    def list_region(self, region_id: str, *, on_shift_only: bool = False) -> list[Courier]:
        stmt = _COURIERS_ON_SHIFT if on_shift_only else _COURIERS_IN_REGION
        return [m.courier_from(dict(r))
                for r in self.conn.execute(stmt, {"region_id": region_id}).mappings()]

    def count_by_status(self, region_id: str) -> dict[str, int]:
        return {status: int(n) for status, n in self.conn.execute(
            _COURIERS_BY_STATUS, {"region_id": region_id})}


class SqlOrders(_Repo):
    def add(self, order: Order) -> None:
        self.conn.execute(insert_into(t.orders), m.order_row(order))

    def save(self, order: Order, *, expected_version: int) -> None:
        c = t.orders.c
        # The region (which never changes) lets PostgreSQL prune to one partition (0009).
        result = self.conn.execute(update_where(t.orders, "id", "region_id", "version"), {
            **m.order_row(order), WHERE + "id": order.id, WHERE + "region_id": order.region_id,
            WHERE + "version": expected_version})
        if result.rowcount != 1:
            stored = self.conn.execute(sa.select(c.version, c.status).where(
                c.id == order.id)).first()
            raise Conflict("concurrent_update",
                           f"order {order.id} changed meanwhile (expected version "
                           f"{expected_version}); retry with the current state",
                           current_version=stored[0] if stored else None,
                           current_state=stored[1] if stored else "missing")

    def get(self, order_id: str) -> Order | None:
        row = self._by(t.orders, id=order_id)
        return m.order_from(row) if row else None

    def status_of(self, order_id: str) -> OrderStatus | None:
        status = self.conn.execute(_ORDER_STATUS, {"id": order_id}).scalar()
        return None if status is None else OrderStatus(status)

    def list(self, *, region_id: str | None = None, consumer_id: str | None = None,
             merchant_id: str | None = None, courier_id: str | None = None,
             statuses: Sequence[OrderStatus] | None = None, limit: int = 100,
             oldest_first: bool = False) -> list[Order]:
        c = t.orders.c
        order = (c.placed_at, c.id) if oldest_first else (c.placed_at.desc(), c.id.desc())
        # Raw rows through the decode memo (``_decoded``): a region's waiting orders are
        # listed by every dispatch round and every quote's ETA queue (app.eta_queue).
        stmt = sa.select(*_RAW_ORDER).order_by(*order).limit(limit)
        for col, value in ((c.region_id, region_id), (c.consumer_id, consumer_id),
                           (c.merchant_id, merchant_id), (c.courier_id, courier_id)):
            if value is not None:
                stmt = stmt.where(col == value)
        if statuses:
            stmt = stmt.where(c.status.in_([s.value for s in statuses]))
        return [_decoded(r) for r in self.conn.execute(stmt)]

    def dropoffs(self, region_id: str, *, statuses: Collection[OrderStatus],
                 limit: int) -> tuple[Point, ...]:
        c = t.orders.c
        # The drop-off is in the order's document: read it alone, without building orders.
        stmt = (sa.select(c.doc).where(c.region_id == region_id)
                .where(c.status.in_(sorted(s.value for s in statuses)))
                .order_by(c.placed_at, c.id).limit(limit))
        return tuple(m.point_from(doc["dropoff"]) for doc in self.conn.execute(stmt).scalars())

    def get_many(self, order_ids: Collection[str]) -> dict[str, Order]:
        if not order_ids:
            return {}
        rows = self.conn.execute(_ORDERS_AMONG, {"ids": list(order_ids)})
        return {o.id: o for o in map(_decoded, rows)}

    def count_of_merchant(self, merchant_id: str, *, statuses: Collection[OrderStatus],
                          excluding: str | None = None, limit: int) -> int:
        return int(self.conn.execute(_MERCHANT_ORDERS_COUNT, {
            "merchant_id": merchant_id, "statuses": sorted(s.value for s in statuses),
            "excluding": excluding or "", "limit": limit}).scalar_one())

    def count_by_status(self, region_id: str, *,
                        statuses: Collection[str] | None = None) -> dict[str, int]:
        if statuses is None:
            rows = self.conn.execute(_ORDERS_BY_STATUS, {"region_id": region_id})
        else:
            rows = self.conn.execute(_ORDERS_IN_STATUSES_BY_STATUS, {
                "region_id": region_id, "statuses": sorted(statuses)})
        return {status: int(n) for status, n in rows}


class SqlEvents(_Repo):
    def append(self, event: Event) -> None:
        self.conn.execute(insert_into(t.events), m.event_row(event))

    def for_subject(self, subject_id: str) -> list[Event]:
        stmt = sa.select(t.events).where(t.events.c.subject_id == subject_id).order_by(
            t.events.c.seq)
        return [m.event_from(dict(r)) for r in self.conn.execute(stmt).mappings()]

    def of_types(self, region_id: str, types: Collection[str], *, since: float,
                 limit: int = 100_000) -> list[Event]:
        c = t.events.c
        stmt = sa.select(t.events).where(
            c.region_id == region_id, c.type.in_(list(types)), c.occurred_at >= since,
        ).order_by(c.seq).limit(limit)
        return [m.event_from(dict(r)) for r in self.conn.execute(stmt).mappings()]


class SqlOutbox(_Repo):
    def add(self, event: Event) -> None:
        event = with_trace_context(event)  # the one place events get the caller's trace
        self.conn.execute(insert_into(t.outbox), {
            "event_id": event.event_id, "payload": event.to_dict(),
            "created_at": event.occurred_at, "tenant_id": event.tenant})

    def pending(self, limit: int) -> list[OutboxEntry]:
        c = t.outbox.c
        stmt = sa.select(c.seq, c.payload).where(c.sent_at.is_(None)).order_by(c.seq).limit(limit)
        return [OutboxEntry(seq=seq, event=Event.from_dict(payload))
                for seq, payload in self.conn.execute(stmt)]

    def claim_head(self, limit: int) -> list[OutboxEntry]:
        """The oldest unsent rows, locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
        has one writer), cut at the first unsent row this transaction could not lock: empty
        when another relay holds the head, so relays publish the outbox in order. (Two
        claims running at once lock rows one by one and can interleave, 15 17 18 | 16: the
        cut keeps 15 alone.)"""
        c = t.outbox.c
        unsent = sa.select(c.seq).where(c.sent_at.is_(None)).order_by(c.seq).limit(limit)
        rows = list(self.conn.execute(
            sa.select(c.seq, c.payload).where(c.sent_at.is_(None)).order_by(c.seq).limit(limit)
            .with_for_update(skip_locked=True)))
        if not rows:
            return []
        head = [seq for (seq,) in self.conn.execute(unsent)]
        claimed = []
        for row, expected in zip(rows, head, strict=False):
            if row.seq != expected:
                break
            claimed.append(OutboxEntry(seq=row.seq, event=Event.from_dict(row.payload)))
        return claimed

    def mark_sent(self, seqs: Sequence[int], at: float) -> None:
        if seqs:
            self.conn.execute(t.outbox.update().where(t.outbox.c.seq.in_(list(seqs)))
                              .values(sent_at=at))


class SqlInbox(_Repo):
    def seen(self, consumer: str, event_id: str) -> bool:
        # One statement: of two transactions recording the same event, exactly one inserts.
        return not insert_or_skip(self.conn, t.inbox, {"consumer": consumer,
                                                       "event_id": event_id})


class SqlIdempotency(_Repo):
    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = self._by(t.idempotency_keys, scope=scope, key=key)
        if row is None:
            return None
        row.pop("tenant_id")
        return IdempotencyRecord(**row)

    def add(self, record: IdempotencyRecord) -> None:
        if not insert_or_skip(self.conn, t.idempotency_keys, {
                "scope": record.scope, "key": record.key, "request_hash": record.request_hash,
                "resource_id": record.resource_id, "created_at": record.created_at}):
            raise Conflict("idempotency_key_taken",
                           f"Idempotency-Key {record.key!r} is being used by a concurrent request",
                           field="Idempotency-Key")


class SqlApiKeys(_Repo):
    def add(self, record: ApiKeyRecord) -> None:
        self.conn.execute(insert_into(t.api_keys), {
            "key_id": record.key_id, "key_hash": record.key_hash, "role": record.role,
            "subject_id": record.subject_id, "created_at": record.created_at,
            "revoked": record.revoked, "tenant_id": record.tenant_id,
            "acts_for": list(record.acts_for)})

    def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = self._by(t.api_keys, key_hash=key_hash)
        if row is None:
            return None
        return ApiKeyRecord(**{**row, "acts_for": tuple(row["acts_for"] or ())})

    def revoke_subject(self, role: str, subject_id: str) -> int:
        c = t.api_keys.c
        result = self.conn.execute(t.api_keys.update().where(
            c.role == role, c.subject_id == subject_id, c.revoked.is_(False)).values(revoked=True))
        return int(result.rowcount)


class SqlOffers(_Repo):
    def add(self, offer: Offer) -> None:
        self.conn.execute(insert_into(t.offers), m.offer_row(offer))
        pending = offer.status is OfferStatus.PENDING
        self.conn.execute(insert_into(t.offer_orders), [
            {"offer_id": offer.id, "order_id": oid, "pending": pending}
            for oid in offer.order_ids])

    def save(self, offer: Offer) -> Offer:
        saved = compare_and_set(self.conn, t.offers, offer, m.offer_row(offer), what="offer",
                                state=t.offers.c.status)
        self.conn.execute(update_where(t.offer_orders, "offer_id"), {
            WHERE + "offer_id": offer.id, "pending": offer.status is OfferStatus.PENDING})
        return saved

    def get(self, offer_id: str) -> Offer | None:
        row = self._by(t.offers, id=offer_id)
        return m.offer_from(row) if row else None

    def pending_for_courier(self, courier_id: str) -> list[Offer]:
        rows = self.conn.execute(_OFFERS_PENDING_FOR_COURIER, {"courier_id": courier_id})
        return [m.offer_from(dict(r)) for r in rows.mappings()]

    def pending_in_region(self, region_id: str) -> list[Offer]:
        rows = self.conn.execute(_OFFERS_PENDING_IN_REGION, {"region_id": region_id})
        return [m.offer_from(dict(r)) for r in rows.mappings()]

    def pending_expired(self, now: float, limit: int, *,
                        after: tuple[float, str] | None = None) -> list[Offer]:
        """Pending offers whose expiry is at or before ``now``, by (expires_at, id) after
        ``after`` (a keyset page), across regions."""
        c = t.offers.c
        stmt = sa.select(t.offers).where(
            c.status == OfferStatus.PENDING.value, c.expires_at <= now).order_by(
            c.expires_at, c.id).limit(limit)
        if after is not None:
            stmt = stmt.where(sa.or_(c.expires_at > after[0],
                                     sa.and_(c.expires_at == after[0], c.id > after[1])))
        return [m.offer_from(dict(r)) for r in self.conn.execute(stmt).mappings()]

    def accepted_for_order(self, order_id: str) -> Offer | None:
        """The offer of ``order_id`` its courier accepted last (None: never accepted)."""
        o, c = t.offer_orders.c, t.offers.c
        stmt = sa.select(t.offers).join(t.offer_orders, o.offer_id == c.id).where(
            o.order_id == order_id, c.status == OfferStatus.ACCEPTED.value).order_by(
            c.decided_at.desc(), c.id.desc()).limit(1)
        row = self.conn.execute(stmt).mappings().first()
        return m.offer_from(dict(row)) if row else None

    def pending_for_order(self, order_id: str) -> list[Offer]:
        rows = self.conn.execute(_OFFERS_PENDING_FOR_ORDER, {"order_id": order_id})
        return [m.offer_from(dict(r)) for r in rows.mappings()]


def _decoded(row: Any) -> Order:
    key = tuple(row)
    order = _DECODED.get(key)
    if order is None:
        fields = dict(row._mapping)  # noqa: SLF001 - the public mapping view of a Row
        fields["doc"] = json.loads(fields["doc"])
        order = m.order_from(fields)
        if len(_DECODED) >= _MAX_DECODED:
            _DECODED.clear()
        _DECODED[key] = order
    return order


class SqlBannedDevices(_Repo):
    def ban(self, device_id: str, *, reason: str, at: float, by: str) -> bool:
        """Ban ``device_id``; False when it was already banned (the first ban stands)."""
        return insert_or_skip(self.conn, t.banned_devices, {
            "device_id": device_id, "reason": reason, "banned_at": at, "banned_by": by})

    def among(self, device_ids: Collection[str]) -> frozenset[str]:
        if not device_ids:
            return frozenset()
        rows = self.conn.execute(_BANNED_AMONG, {"ids": sorted(device_ids)})
        return frozenset(r[0] for r in rows)
