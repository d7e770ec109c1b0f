"""SQL repositories for Drive deliveries, quotes, webhooks, notifications and sandbox
captures."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lastmile.adapters.db import tables_drive as t
from lastmile.adapters.db.prepared import select_where
from lastmile.adapters.db.repositories import compare_and_set
from lastmile.adapters.db.writes import insert_or_skip, insert_or_update
from lastmile.core.delivery.model import (
    Contact,
    Delivery,
    DriveQuote,
    ProofRequirement,
    TimeWindow,
    Undeliverable,
)
from lastmile.core.delivery.notices import NoticeKind, NoticeStatus, Notification
from lastmile.core.errors import Conflict
from lastmile.core.geo import Point
from lastmile.core.sandbox import Capture, CaptureChannel
from lastmile.core.webhooks import Endpoint, Message, MessageStatus

Row = dict[str, Any]


def _window_doc(w: TimeWindow | None) -> list[float] | None:
    return None if w is None else [w.start_at, w.end_at]


def _window(raw: list[float] | None) -> TimeWindow | None:
    return None if raw is None else TimeWindow(start_at=raw[0], end_at=raw[1])


def delivery_row(d: Delivery) -> Row:
    c = d.contact
    doc = {
        "pickup": [d.pickup.lat, d.pickup.lng], "dropoff": [d.dropoff.lat, d.dropoff.lng],
        "contact": {"first_name": c.first_name, "last_name": c.last_name, "phone": c.phone,
                    "email": c.email},
        "order_value_minor": d.order_value_minor, "tip_minor": d.tip_minor,
        "pickup_window": _window_doc(d.pickup_window),
        "dropoff_window": _window_doc(d.dropoff_window),
        "instructions": d.instructions, "contactless": d.contactless,
        "undeliverable_action": d.undeliverable_action.value,
        "proof": {"photo": d.proof.photo, "signature": d.proof.signature, "pin": d.proof.pin},
        "outcome": d.outcome, "signature_ref": d.signature_ref, "updated_at": d.updated_at,
        "delayed_at": d.delayed_at,
    }
    return {"id": d.id, "merchant_id": d.merchant_id,
            "external_delivery_id": d.external_delivery_id, "order_id": d.order_id,
            "request_hash": d.request_hash, "tracking_token": d.tracking_token,
            "created_at": d.created_at, "version": d.version, "doc": doc}


def delivery_from(row: Row) -> Delivery:
    doc = row["doc"]
    return Delivery(
        id=row["id"], merchant_id=row["merchant_id"],
        external_delivery_id=row["external_delivery_id"], order_id=row["order_id"],
        request_hash=row["request_hash"], tracking_token=row["tracking_token"],
        created_at=row["created_at"],
        pickup=Point(lat=doc["pickup"][0], lng=doc["pickup"][1]),
        dropoff=Point(lat=doc["dropoff"][0], lng=doc["dropoff"][1]),
        contact=Contact(**doc["contact"]), order_value_minor=doc["order_value_minor"],
        tip_minor=doc["tip_minor"], pickup_window=_window(doc["pickup_window"]),
        dropoff_window=_window(doc["dropoff_window"]), instructions=doc["instructions"],
        contactless=doc["contactless"],
        undeliverable_action=Undeliverable(doc["undeliverable_action"]),
        proof=ProofRequirement(**doc["proof"]), outcome=doc["outcome"],
        signature_ref=doc["signature_ref"], updated_at=doc["updated_at"],
        delayed_at=doc.get("delayed_at"), version=row["version"],
    )


class _Repo:
    def __init__(self, conn: Connection):
        self.conn = conn

    def _one(self, stmt: sa.Select[Any]) -> Row | None:
        row = self.conn.execute(stmt).mappings().first()
        return dict(row) if row is not None else None


class SqlDeliveries(_Repo):
    def add(self, d: Delivery) -> None:
        if not insert_or_skip(self.conn, t.deliveries, {"finished": False, **delivery_row(d)}):
            raise Conflict("external_delivery_id_taken",
                           f"external_delivery_id {d.external_delivery_id!r} is being created "
                           "by a concurrent request", field="external_delivery_id")

    def save(self, d: Delivery) -> Delivery:
        return compare_and_set(self.conn, t.deliveries, d, delivery_row(d), what="delivery")

    def set_finished(self, delivery_id: str) -> None:
        self.conn.execute(t.deliveries.update().where(t.deliveries.c.id == delivery_id)
                          .values(finished=True))

    def _by(self, column: sa.Column[Any], value: str, merchant_id: str | None = None) -> Delivery | None:
        # Prepared (adapters.db.prepared): by_order runs for every order event the relay
        # hands the Drive webhooks subscriber.
        where = {column.name: value} if merchant_id is None else {
            column.name: value, "merchant_id": merchant_id}
        row = self.conn.execute(select_where(t.deliveries, *where), where).mappings().first()
        return delivery_from(dict(row)) if row else None

    def by_external(self, merchant_id: str, external_delivery_id: str) -> Delivery | None:
        return self._by(t.deliveries.c.external_delivery_id, external_delivery_id, merchant_id)

    def by_order(self, order_id: str) -> Delivery | None:
        return self._by(t.deliveries.c.order_id, order_id)

    def by_token(self, token: str) -> Delivery | None:
        return self._by(t.deliveries.c.tracking_token, token)

    def page(self, merchant_id: str, *, limit: int,
             after: tuple[float, str] | None = None) -> list[Delivery]:
        """Newest first; ``after`` is the (created_at, id) of the last row already shown."""
        c = t.deliveries.c
        stmt = (sa.select(t.deliveries).where(c.merchant_id == merchant_id)
                .order_by(c.created_at.desc(), c.id.desc()).limit(limit))
        if after is not None:
            stmt = stmt.where(sa.or_(c.created_at < after[0],
                                     sa.and_(c.created_at == after[0], c.id < after[1])))
        return [delivery_from(dict(r)) for r in self.conn.execute(stmt).mappings()]

    def in_flight(self, limit: int, *, after_id: str | None = None) -> list[Delivery]:
        """Up to ``limit`` unfinished deliveries by id after ``after_id``: callers page
        through all of them, so none is starved however many are in flight."""
        c = t.deliveries.c
        stmt = sa.select(t.deliveries).where(c.finished.is_(False)).order_by(c.id).limit(limit)
        if after_id is not None:
            stmt = stmt.where(c.id > after_id)
        return [delivery_from(dict(r)) for r in self.conn.execute(stmt).mappings()]


class SqlDriveQuotes(_Repo):
    def put(self, q: DriveQuote) -> None:
        """Insert or replace the quote for (merchant, external id), in one upsert: two
        concurrent quotes for one id never both insert and fail the second."""
        insert_or_update(self.conn, t.drive_quotes, {
            "merchant_id": q.merchant_id, "external_delivery_id": q.external_delivery_id,
            "request_hash": q.request_hash, "created_at": q.created_at,
            "expires_at": q.expires_at, "accepted": q.accepted,
            "doc": {"request": q.request, "currency": q.currency,
                    "prices_minor": q.prices_minor, "eta": list(q.eta),
                    "distance_m": q.distance_m}}, keys=("tenant_id", "merchant_id", "external_delivery_id"))

    def get(self, merchant_id: str, external_delivery_id: str) -> DriveQuote | None:
        c = t.drive_quotes.c
        row = self._one(sa.select(t.drive_quotes).where(
            c.merchant_id == merchant_id, c.external_delivery_id == external_delivery_id))
        if row is None:
            return None
        doc = row["doc"]
        return DriveQuote(
            merchant_id=row["merchant_id"], external_delivery_id=row["external_delivery_id"],
            request_hash=row["request_hash"], request=doc["request"], currency=doc["currency"],
            prices_minor=doc["prices_minor"], eta=tuple(doc["eta"]),
            distance_m=doc["distance_m"], created_at=row["created_at"],
            expires_at=row["expires_at"], accepted=row["accepted"])


def endpoint_from(row: Row) -> Endpoint:
    return Endpoint(id=row["id"], merchant_id=row["merchant_id"], url=row["url"],
                    secret=row["secret"], event_types=tuple(row["event_types"]),
                    created_at=row["created_at"], active=row["active"],
                    eta_under_s=row["eta_under_s"], nearby_m=row["nearby_m"])


def message_row(m: Message) -> Row:
    return {"id": m.id, "endpoint_id": m.endpoint_id, "merchant_id": m.merchant_id,
            "event_id": m.event_id, "event_type": m.event_type, "payload": m.payload,
            "status": m.status.value, "attempts": m.attempts, "next_attempt_at": m.next_attempt_at,
            "last_error": m.last_error, "last_status_code": m.last_status_code,
            "created_at": m.created_at, "delivered_at": m.delivered_at}


def message_from(row: Row) -> Message:
    row = {k: v for k, v in row.items() if k != "tenant_id"} | {"tenant": row["tenant_id"]}
    return Message(**{**row, "status": MessageStatus(row["status"])})


class SqlWebhooks(_Repo):
    def add_endpoint(self, e: Endpoint) -> None:
        self.conn.execute(t.webhook_endpoints.insert().values(
            id=e.id, merchant_id=e.merchant_id, url=e.url, secret=e.secret,
            event_types=list(e.event_types), active=e.active, eta_under_s=e.eta_under_s,
            nearby_m=e.nearby_m, created_at=e.created_at))

    def deactivate(self, endpoint_id: str) -> None:
        self.conn.execute(t.webhook_endpoints.update().where(
            t.webhook_endpoints.c.id == endpoint_id).values(active=False))

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = self._one(sa.select(t.webhook_endpoints).where(
            t.webhook_endpoints.c.id == endpoint_id))
        return endpoint_from(row) if row else None

    def endpoints_for(self, merchant_id: str) -> list[Endpoint]:
        """The merchant's active endpoints, oldest first."""
        c = t.webhook_endpoints.c
        stmt = sa.select(t.webhook_endpoints).where(
            c.merchant_id == merchant_id, c.active.is_(True)).order_by(c.created_at, c.id)
        return [endpoint_from(dict(r)) for r in self.conn.execute(stmt).mappings()]

    def enqueue(self, m: Message) -> bool:
        """Queue ``m``; False when this endpoint already has a message with its event id."""
        # The row names its tenant: in a tenant's unit another tenant's is refused
        # (tenant_scope); updates never set it (rows never move between tenants).
        return insert_or_skip(self.conn, t.webhook_messages,
                              {"tenant_id": m.tenant, **message_row(m)})

    def message(self, message_id: str) -> Message | None:
        row = self._one(sa.select(t.webhook_messages).where(t.webhook_messages.c.id == message_id))
        return message_from(row) if row else None

    def due(self, now: float, limit: int, *, lease_s: float | None = None) -> list[Message]:
        table = t.webhook_messages
        rows = _claim(self.conn, table, MessageStatus.PENDING.value, now, limit, lease_s)
        return [message_from(r) for r in rows]

    def save_message(self, m: Message) -> None:
        self.conn.execute(t.webhook_messages.update().where(t.webhook_messages.c.id == m.id)
                          .values(**message_row(m)))

    def add_attempt(self, *, message_id: str, attempt: int, at: float, status_code: int | None,
                    error: str | None) -> None:
        self.conn.execute(t.webhook_attempts.insert().values(
            message_id=message_id, attempt=attempt, at=at, status_code=status_code, error=error))

    def attempts(self, message_id: str) -> list[Row]:
        c = t.webhook_attempts.c
        stmt = sa.select(c.attempt, c.at, c.status_code, c.error).where(
            c.message_id == message_id).order_by(c.seq)
        return [dict(r) for r in self.conn.execute(stmt).mappings()]

    def messages(self, merchant_id: str, *, endpoint_id: str | None = None,
                 status: str | None = None, limit: int = 50) -> list[Message]:
        c = t.webhook_messages.c
        stmt = (sa.select(t.webhook_messages).where(c.merchant_id == merchant_id)
                .order_by(c.created_at.desc(), c.id.desc()).limit(limit))
        if endpoint_id is not None:
            stmt = stmt.where(c.endpoint_id == endpoint_id)
        if status is not None:
            stmt = stmt.where(c.status == status)
        return [message_from(dict(r)) for r in self.conn.execute(stmt).mappings()]


def notification_row(n: Notification) -> Row:
    return {"id": n.id, "event_id": n.event_id, "kind": n.kind.value,
            "recipient_kind": n.recipient_kind, "recipient_id": n.recipient_id,
            "channel": n.channel, "address": n.address, "subject": n.subject, "body": n.body,
            "status": n.status.value, "attempts": n.attempts,
            "next_attempt_at": n.next_attempt_at, "last_error": n.last_error,
            "created_at": n.created_at, "sent_at": n.sent_at}


def notification_from(row: Row) -> Notification:
    row = {k: v for k, v in row.items() if k != "tenant_id"} | {"tenant": row["tenant_id"]}
    return Notification(**{**row, "kind": NoticeKind(row["kind"]),
                           "status": NoticeStatus(row["status"])})


def _claim(conn: Connection, table: sa.Table, pending: str, now: float, limit: int,
           lease_s: float | None) -> list[dict[str, Any]]:
    """Due rows (pending, next attempt reached), oldest first. With a lease, rows another
    transaction holds are skipped (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite has one
    writer anyway) and the claimed rows' next attempt moves ``lease_s`` ahead, so a crashed
    sender's rows come back after the lease."""
    c = table.c
    stmt = (sa.select(table).where(c.status == pending, c.next_attempt_at <= now)
            .order_by(c.next_attempt_at, c.created_at, c.id).limit(limit))
    if lease_s is not None:
        stmt = stmt.with_for_update(skip_locked=True)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    if lease_s is not None and rows:
        conn.execute(table.update().where(c.id.in_([r["id"] for r in rows]))
                     .values(next_attempt_at=now + lease_s))
    return rows


class SqlNotifications(_Repo):
    def add(self, n: Notification) -> bool:
        """Queue ``n``; False when (event, recipient kind, channel) is already queued."""
        return insert_or_skip(self.conn, t.notifications,
                              {"tenant_id": n.tenant, **notification_row(n)})

    def due(self, now: float, limit: int, *,
            lease_s: float | None = None) -> list[Notification]:
        table = t.notifications
        rows = _claim(self.conn, table, NoticeStatus.PENDING.value, now, limit, lease_s)
        return [notification_from(r) for r in rows]

    def save(self, n: Notification) -> None:
        self.conn.execute(t.notifications.update().where(t.notifications.c.id == n.id)
                          .values(**notification_row(n)))

    def list(self, *, status: str | None = None, recipient_id: str | None = None,
             limit: int = 100) -> list[Notification]:
        c = t.notifications.c
        stmt = sa.select(t.notifications).order_by(c.created_at, c.id).limit(limit)
        if status is not None:
            stmt = stmt.where(c.status == status)
        if recipient_id is not None:
            stmt = stmt.where(c.recipient_id == recipient_id)
        return [notification_from(dict(r)) for r in self.conn.execute(stmt).mappings()]


def capture_row(c: Capture) -> Row:
    return {"id": c.id, "channel": c.channel.value, "target": c.target,
            "event_type": c.event_type, "subject_id": c.subject_id, "headers": c.headers,
            "body": c.body, "created_at": c.created_at}


def capture_from(row: Row) -> Capture:
    return Capture(id=row["id"], channel=CaptureChannel(row["channel"]), target=row["target"],
                   event_type=row["event_type"], subject_id=row["subject_id"],
                   headers=dict(row["headers"]), body=row["body"],
                   created_at=row["created_at"])


class SqlSandboxCaptures(_Repo):
    def add(self, c: Capture) -> None:
        self.conn.execute(t.sandbox_captures.insert().values(**capture_row(c)))

    def list(self, *, channel: str | None = None, subject_id: str | None = None,
             limit: int = 50) -> list[Capture]:
        c = t.sandbox_captures.c
        stmt = (sa.select(t.sandbox_captures).order_by(c.created_at.desc(), c.id.desc())
                .limit(limit))
        if channel is not None:
            stmt = stmt.where(c.channel == channel)
        if subject_id is not None:
            stmt = stmt.where(c.subject_id == subject_id)
        return [capture_from(dict(r)) for r in self.conn.execute(stmt).mappings()]
