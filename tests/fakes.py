"""Test doubles for the ports and builders for values (no mocks of our own ports)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

import fake_repos as fr
import fake_repos_drive as frd
import fake_repos_eta as fre
import fake_repos_experiments as frx
import fake_repos_payments as frp
from fake_repos import MemoryDb, Table
from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.core.geo import Point
from lastmile.core.money import Money
from lastmile.core.orders import EtaWindow, Order, OrderLine, PriceBreakdown


class RecordingPublisher:
    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[Event] = []
        self.fail_times = fail_times

    def publish(self, event: Event) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("subscriber down")
        self.events.append(event)


def usd(minor: int) -> Money:
    return Money(amount_minor=minor, currency="USD")


def an_order(**overrides: Any) -> Order:
    base = Order(
        id="ord_1", region_id="reg_1", merchant_id="mer_1", consumer_id="con_1",
        lines=(OrderLine(item_id="itm_1", name="Pad thai", quantity=2, unit_price=usd(1200)),),
        prices=PriceBreakdown(subtotal=usd(2400), delivery_fee=usd(299), service_fee=usd(240),
                              small_order_fee=usd(0), tax=usd(200), tip=usd(300)),
        pickup=Point(lat=37.44, lng=-122.16), dropoff=Point(lat=37.45, lng=-122.14),
        placed_at=1000.0, eta=EtaWindow(low_at=2000.0, expected_at=2500.0, high_at=3000.0),
    )
    return replace(base, **overrides)


def fixed_clock(at: float = 1_767_225_600.0) -> ManualClock:
    return ManualClock(at)


def seeded(seed: int = 1) -> tuple[SequentialIds, random.Random]:
    return SequentialIds(), random.Random(seed)


class FakeUnitOfWork:
    """A unit of work in memory (cosmicpython's ``FakeUnitOfWork``) implementing every
    repository of ``lastmile.app.ports``: writes stay invisible to other units until
    ``commit``; ``rollback``, or leaving the ``with`` without committing, discards them.
    ``committed`` tells a test whether the use case committed."""

    def __init__(self, db: MemoryDb, *, read_only: bool = False) -> None:
        self._db = db
        self.read_only = read_only
        self.committed = False
        self._tables: list[Table[Any, Any]] = []
        t = self._table
        self.tenants = fr.MemTenants(t("tenants"))
        self.regions = fr.MemRegions(t("regions"))
        self.merchants = fr.MemMerchants(t("merchants"))
        self.consumers = fr.MemConsumers(t("consumers"))
        orders, banned = t("orders"), t("banned_devices")
        self.couriers = fr.MemCouriers(t("couriers"), orders=orders, banned=banned)
        self.orders = fr.MemOrders(orders)
        self.events = fr.MemEvents(t("events"), db.seq)
        self.outbox = fr.MemOutbox(t("outbox"), db.seq, t("outbox_sent"))
        self.inbox = fr.MemInbox(t("inbox"))
        self.idempotency = fr.MemIdempotency(t("idempotency"))
        self.api_keys = fr.MemApiKeys(t("api_keys"))
        self.offers = fr.MemOffers(t("offers"))
        self.banned_devices = fr.MemBannedDevices(banned)
        self.deliveries = frd.MemDeliveries(t("deliveries"))
        self.drive_quotes = frd.MemDriveQuotes(t("drive_quotes"))
        self.webhooks = frd.MemWebhooks(t("webhook_endpoints"), t("webhook_messages"),
                                       t("webhook_attempts"), db.seq)
        self.notifications = frd.MemNotifications(t("notifications"))
        self.sandbox_captures = frd.MemSandboxCaptures(t("sandbox_captures"))
        self.payments = frp.MemPayments(t("payments"))
        self.processor_calls = frp.MemProcessorCalls(t("processor_calls"))
        self.pin_attempts = fr.MemPinAttempts(t("pin_attempts"))
        self.leases = fr.MemLeases(t("leases"), t("dispatcher_workers"))
        self.ledger = fr.MemLedger(t("ledger"))
        self.refund_requests = fr.MemRefundRequests(t("refund_requests"))
        self.eta_history = fre.MemEtaHistory(t("eta_history"), t("eta_supply_minutes"))
        self.experiments = frx.MemExperiments(t("experiments"), t("experiment_layers"),
                                              t("experiment_exposures"))

    def _table(self, name: str) -> Table[Any, Any]:
        table = self._db.table(name)
        self._tables.append(table)
        return table

    def __enter__(self) -> FakeUnitOfWork:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.rollback()

    def commit(self) -> None:
        assert not self.read_only, "commit in a read-only unit of work"
        with self._db.lock:  # one commit at a time, as a database applies them
            for table in self._tables:
                table.commit()
        self.committed = True

    def rollback(self) -> None:
        for table in self._tables:
            table.rollback()


class FakeUnitOfWorkFactory:
    """``Services(uow=FakeUnitOfWorkFactory(), ...)``: units over one shared in-memory
    database; ``units`` lists every unit handed out, for tests that ask what was committed."""

    def __init__(self) -> None:
        self.db = MemoryDb()
        self.units: list[FakeUnitOfWork] = []

    def __call__(self, *, read_only: bool = False) -> FakeUnitOfWork:
        unit = FakeUnitOfWork(self.db, read_only=read_only)
        self.units.append(unit)
        return unit

    @property
    def last(self) -> FakeUnitOfWork:
        return self.units[-1]


def fake_services(at: float | None = None, seed: int = 3) -> Services:
    """Use-case services on a fake unit of work, a manual clock and sequential ids."""
    clock = ManualClock() if at is None else ManualClock(at)
    return Services(uow=FakeUnitOfWorkFactory(), clock=clock, ids=SequentialIds(),
                    rng=random.Random(seed))


def in_memory(fixture: Any = "platform") -> Any:
    """Run a use-case test on the seeded platform with a fake unit of work instead of a
    database: ``@in_memory`` (the ``platform`` fixture) or ``@in_memory("sqlite_platform")``.
    Keep SQL for tests of SQL: repositories, migrations, races, query counts."""
    if callable(fixture):
        return in_memory()(fixture)
    return pytest.mark.parametrize(fixture, ["fake"], indirect=True)
