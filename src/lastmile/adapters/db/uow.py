"""The SQL unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Connection, Engine

from lastmile.adapters.db import repositories as r
from lastmile.adapters.db import repositories_drive as rd
from lastmile.adapters.db.engine import READ_ONLY
from lastmile.app import ports


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

    def __init__(self, engine: Engine, *, read_only: bool = False):
        self._engine = engine
        self._read_only = read_only
        self._conn: Connection | None = None

    def __enter__(self) -> SqlUnitOfWork:
        conn = self._engine.connect()
        conn.info[READ_ONLY] = self._read_only
        conn.begin()
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
    def __init__(self, engine: Engine):
        self.engine = engine

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only=read_only)
