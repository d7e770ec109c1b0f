"""The SQL unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from lastmile.adapters.db import repositories as r
from lastmile.adapters.db import repositories_drive as rd
from lastmile.adapters.db import repositories_eta as reta
from lastmile.adapters.db import repositories_experiments as rex
from lastmile.adapters.db import repositories_leases as rl
from lastmile.adapters.db import repositories_ledger as rlg
from lastmile.adapters.db import repositories_payments as rpay
from lastmile.adapters.db import repositories_pins as rp
from lastmile.adapters.db import repositories_refunds as rrf
from lastmile.adapters.db import repositories_relay as rr
from lastmile.adapters.db.engine import READ_ONLY
from lastmile.adapters.db.tenant_scope import SCOPE
from lastmile.adapters.outages import as_outage
from lastmile.app import ports
from lastmile.app.ports_eta import EtaHistoryRepo
from lastmile.app.ports_experiments import ExperimentRepo
from lastmile.app.tenancy import current_tenant
from lastmile.core.errors import Conflict, DependencyUnavailable

WRITE_WAIT_S = 30.0  # as long as SQLite's own busy timeout
# PostgreSQL's "another transaction got there first" outcomes: serialization_failure and
# deadlock_detected; and the integrity rules a concurrent write can break: unique_violation,
# exclusion_violation, foreign_key_violation (SQLite names them in its message instead).
_RACE_SQLSTATES = frozenset({"40001", "40P01", "23505", "23P01", "23503"})
_RACE_SQLITE = ("UNIQUE constraint failed", "FOREIGN KEY constraint failed")


def lost_race(exc: BaseException | None) -> Conflict | None:
    """The Conflict a database error escaping a unit of work becomes, or None.

    A unique (or partial unique) index firing is a check in code that a concurrent request
    passed at the same time: a 409 ``concurrent_update`` that ``app.retry`` re-runs on the
    new state, never a 500. Any other integrity error (a NOT NULL or CHECK rule) is a 409
    ``constraint_violated``, not retried: running it again would break the rule again.
    """
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None)
    raced = sqlstate in _RACE_SQLSTATES or (
        isinstance(exc, sa.exc.IntegrityError) and str(exc.orig).startswith(_RACE_SQLITE))
    if raced:
        return Conflict("concurrent_update",
                        "a concurrent request changed the same data first (the database "
                        "refused this write); retry with the current state",
                        current_state="changed")
    if isinstance(exc, sa.exc.IntegrityError):
        return Conflict("constraint_violated",
                        f"the database refused the write: {str(exc.orig).splitlines()[0]}")
    return None


class SqlUnitOfWork:
    """Use as ``with factory() as uow: ...; uow.commit()``; leaving without commit rolls back."""

    # Declared as the ports' types: a protocol's attributes are invariant, so a
    # ``SqlRegions``-typed attribute would not make this a ``ports.UnitOfWork``.
    tenants: ports.TenantRepo
    regions: ports.RegionRepo
    merchants: ports.MerchantRepo
    consumers: ports.ConsumerRepo
    couriers: ports.CourierRepo
    orders: ports.OrderRepo
    events: ports.EventLog
    outbox: ports.Outbox
    event_deliveries: ports.EventDeliveries
    inbox: ports.Inbox
    idempotency: ports.IdempotencyRepo
    api_keys: ports.ApiKeyRepo
    offers: ports.OfferRepo
    banned_devices: ports.BannedDeviceRepo
    deliveries: ports.DeliveryRepo
    drive_quotes: ports.DriveQuoteRepo
    webhooks: ports.WebhookRepo
    notifications: ports.NotificationRepo
    sandbox_captures: ports.SandboxCaptureRepo
    payments: ports.PaymentRepo
    processor_calls: ports.ProcessorCallRepo
    pin_attempts: ports.PinAttemptRepo
    leases: ports.LeaseRepo
    ledger: ports.LedgerRepo
    refund_requests: ports.RefundRequestRepo
    eta_history: EtaHistoryRepo
    experiments: ExperimentRepo

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
            if self._read_only and conn.dialect.name == "postgresql":
                # psycopg then sends BEGIN READ ONLY: one round trip where BEGIN and SET
                # TRANSACTION READ ONLY took two; reset when the connection goes back.
                conn.execution_options(postgresql_readonly=True)
            conn.info[READ_ONLY] = self._read_only
            # The tenant of this unit, fixed at its start: every statement on the
            # connection is scoped to it (adapters.db.tenant_scope).
            conn.info[SCOPE] = current_tenant()
            conn.begin()
        except BaseException as exc:
            if self._lock is not None:
                self._lock.release()
            outage = as_outage(exc)
            if outage is not None:
                raise outage from exc
            raise
        self._conn = conn
        return self

    def __getattr__(self, name: str) -> object:
        """A repository is built on first use (a unit of work uses a few of its 25), then
        kept for the rest of the unit."""
        make = _REPOS.get(name)
        if make is None or self._conn is None:
            raise AttributeError(name)
        repo = make(self._conn)
        setattr(self, name, repo)
        return repo

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # Also an inactive transaction: one whose commit failed on a dead connection
            # must be rolled back before the connection can close (and be replaced).
            if conn.get_transaction() is not None:
                conn.rollback()
        except Exception as rollback_error:
            # The connection died under the unit of work (a cut, a restart): the server
            # rolls back on its own. Report the body's error, not the failed rollback; with
            # no error in the body (nothing was committed or meant to be) there is none.
            if as_outage(rollback_error) is None:
                raise
        finally:
            conn.info.pop(READ_ONLY, None)  # the pooled connection outlives this unit
            conn.info.pop(SCOPE, None)
            try:
                conn.close()
            finally:
                if self._lock is not None:
                    self._lock.release()
        conflict = lost_race(exc)
        if conflict is not None:
            raise conflict from exc
        outage = None if isinstance(exc, DependencyUnavailable) else as_outage(exc)
        if outage is not None:
            raise outage from exc

    @property
    def read_only(self) -> bool:
        return self._read_only

    def commit(self) -> None:
        assert self._conn is not None, "commit outside 'with'"
        assert not self._read_only, "commit in a read-only unit of work"
        self._conn.commit()
        self._conn.begin()

    def rollback(self) -> None:
        assert self._conn is not None, "rollback outside 'with'"
        self._conn.rollback()
        self._conn.begin()


_REPOS: dict[str, Callable[[Connection], object]] = {
    "tenants": r.SqlTenants, "regions": r.SqlRegions, "merchants": r.SqlMerchants,
    "consumers": r.SqlConsumers, "couriers": r.SqlCouriers, "orders": r.SqlOrders,
    "events": r.SqlEvents, "outbox": r.SqlOutbox, "event_deliveries": rr.SqlEventDeliveries,
    "inbox": r.SqlInbox, "idempotency": r.SqlIdempotency, "api_keys": r.SqlApiKeys,
    "offers": r.SqlOffers, "banned_devices": r.SqlBannedDevices,
    "deliveries": rd.SqlDeliveries, "drive_quotes": rd.SqlDriveQuotes,
    "webhooks": rd.SqlWebhooks, "notifications": rd.SqlNotifications,
    "sandbox_captures": rd.SqlSandboxCaptures, "payments": rpay.SqlPayments,
    "processor_calls": rpay.SqlProcessorCalls, "pin_attempts": rp.SqlPinAttempts,
    "leases": rl.SqlLeases, "ledger": rlg.SqlLedger, "refund_requests": rrf.SqlRefundRequests,
    "eta_history": reta.SqlEtaHistory, "experiments": rex.SqlExperiments,
}


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
