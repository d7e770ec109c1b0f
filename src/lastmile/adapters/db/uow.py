"""The SQL unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

import threading
from types import TracebackType

from sqlalchemy.engine import Connection, Engine

from lastmile.adapters.db import repositories as r
from lastmile.adapters.db import repositories_drive as rd
from lastmile.adapters.db import repositories_pins as rp
from lastmile.adapters.db.engine import READ_ONLY
from lastmile.app import ports
from lastmile.core.errors import Conflict

WRITE_WAIT_S = 30.0  # as long as SQLite's own busy timeout


class SqlUnitOfWork:
    """Use as ``with factory() as uow: ...; uow.commit()``; leaving without commit rolls back."""

    # Declared as the ports' types: a protocol's attributes are invariant, so a
    # ``SqlRegions``-typed attribute would not make this a ``ports.UnitOfWork``.
    regions: ports.RegionRepo
    merchants: ports.MerchantRepo
    consumers: ports.ConsumerRepo
    couriers: ports.CourierRepo
    orders: ports.OrderRepo
    events: ports.EventLog
    outbox: ports.Outbox
    inbox: ports.Inbox
    idempotency: ports.IdempotencyRepo
    api_keys: ports.ApiKeyRepo
    offers: ports.OfferRepo
    banned_devices: ports.BannedDeviceRepo
    deliveries: ports.DeliveryRepo
    drive_quotes: ports.DriveQuoteRepo
    webhooks: ports.WebhookRepo
    notifications: ports.NotificationRepo
    pin_attempts: ports.PinAttemptRepo

    def __init__(self, engine: Engine, *, read_only: bool = False,
                 write_lock: threading.RLock | None = None):
        self._engine = engine
        self._read_only = read_only
        self._lock = None if read_only else write_lock
        self._conn: Connection | None = None

    def __enter__(self) -> SqlUnitOfWork:
        if self._lock is not None and not self._lock.acquire(timeout=WRITE_WAIT_S):
            raise Conflict("database_busy", "the database stayed busy; retry the request")
        try:
            conn = self._engine.connect()
            conn.info[READ_ONLY] = self._read_only
            conn.begin()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self._conn = conn
        self.regions = r.SqlRegions(conn)
        self.merchants = r.SqlMerchants(conn)
        self.consumers = r.SqlConsumers(conn)
        self.couriers = r.SqlCouriers(conn)
        self.orders = r.SqlOrders(conn)
        self.events = r.SqlEvents(conn)
        self.outbox = r.SqlOutbox(conn)
        self.inbox = r.SqlInbox(conn)
        self.idempotency = r.SqlIdempotency(conn)
        self.api_keys = r.SqlApiKeys(conn)
        self.offers = r.SqlOffers(conn)
        self.banned_devices = r.SqlBannedDevices(conn)
        self.deliveries = rd.SqlDeliveries(conn)
        self.drive_quotes = rd.SqlDriveQuotes(conn)
        self.webhooks = rd.SqlWebhooks(conn)
        self.notifications = rd.SqlNotifications(conn)
        self.pin_attempts = rp.SqlPinAttempts(conn)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.info.pop(READ_ONLY, None)  # the pooled connection outlives this unit
            conn.close()
            if self._lock is not None:
                self._lock.release()

    def commit(self) -> None:
        assert self._conn is not None, "commit outside 'with'"
        assert not self._read_only, "commit in a read-only unit of work"
        self._conn.commit()
        self._conn.begin()

    def rollback(self) -> None:
        assert self._conn is not None, "rollback outside 'with'"
        self._conn.rollback()
        self._conn.begin()


class SqlUnitOfWorkFactory:
    """Units of work on one engine.

    SQLite has one writer at a time; left to itself, a waiting writer sleep-polls
    (its busy handler backs off up to 100 ms a try), which showed as a p99 of
    0.4-0.6 s in bench/api_orders.py. Writers of this process therefore queue on
    a lock first and find the database free; other processes still meet the busy
    timeout. PostgreSQL needs no such lock.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only=read_only, write_lock=self._write_lock)
