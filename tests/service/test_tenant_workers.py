"""Background work serves every tenant, each piece as its own (docs/tenants-workers.md).

Two tenants on one database, each with its region, merchants, consumers and couriers: the
dispatcher, housekeeping and the Drive senders, started in the default tenant, do the
second tenant's work too, and everything they write stays in the tenant it belongs to.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
from drive_helpers import a_request, pump

from lastmile.adapters.clock import ManualClock
from lastmile.adapters.db import tables
from lastmile.adapters.db import tables_drive as td
from lastmile.adapters.dispatch_worker import DispatchWorker
from lastmile.adapters.region_leases import LeaseKeeper
from lastmile.adapters.webhooks.worker import DriveWorkers, install_drive
from lastmile.app import drive, every_tenant, fulfilment, offers, queries, webhooks
from lastmile.app.housekeeping import run_housekeeping
from lastmile.app.live import CourierLive
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.app.tenancy import acting_as, current_tenant
from lastmile.core.dispatch import DispatchPolicy, PolicyKind
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind, Order
from lastmile.core.tenancy import DEFAULT_TENANT
from lastmile.sim.seed import seed_demo, tenant_region_id
from tenant_worlds import World

ACME = "acme:city"
DROP = Point(lat=37.445, lng=-122.15)
GREEDY = DispatchPolicy(kind=PolicyKind.GREEDY)


def _worlds(platform) -> list[World]:
    with acting_as(ACME):
        acme = seed_demo(platform.services, seed=6, merchants=2, consumers=2, couriers=2,
                         region_id=tenant_region_id(ACME))
    return [World(tenant=DEFAULT_TENANT, seed=platform.seed), World(tenant=ACME, seed=acme)]


def _confirmed_order(platform, w: World, key: str = "k") -> Order:
    with acting_as(w.tenant):
        m = queries.get_merchant(platform.services, w.seed.merchant_ids[0])
        req = OrderRequest(consumer_id=w.seed.consumer_ids[0], merchant_id=m.id,
                           lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=DROP)
        order = place_order(platform.services, req, idempotency_key=key).order
        return fulfilment.confirm_order(platform.services, order.id, prep_estimate_s=600,
                                        actor=Actor(kind=ActorKind.MERCHANT, id=m.id))


def _on_shift(platform, w: World, i: int = 0, *, hours: float = 4.0) -> str:
    cid = w.seed.courier_ids[i]
    with acting_as(w.tenant):
        fulfilment.start_shift(platform.services, cid, device_id=f"{w.tenant}-d{i}",
                               ends_at=platform.clock.now() + hours * 3600,
                               actor=Actor(kind=ActorKind.COURIER, id=cid))
    platform.container.live.upsert(CourierLive(
        courier_id=cid, region_id=w.region_id, lat=DROP.lat, lng=DROP.lng, status="idle",
        updated_at=platform.clock.now()))
    return cid


def _tenant_of(platform, table: sa.Table, key: str, ids: set[str]) -> dict[str, str]:
    """Each row's tenant, read below the tenant layer (a connection outside any unit)."""
    column = table.c[key]
    with platform.container.engine.connect() as conn:
        rows = conn.execute(sa.select(column, table.c.tenant_id).where(column.in_(ids)))
        return {k: t for k, t in rows}


def _typed_event_tenants(platform, region_id: str) -> set[tuple[str, str]]:
    """(type, tenant) of every event recorded in the region, read below the tenant layer."""
    e = tables.events.c
    with platform.container.engine.connect() as conn:
        rows = conn.execute(sa.select(e.type, e.tenant_id).where(e.region_id == region_id))
        return {(t, tenant) for t, tenant in rows}


def _assert_same_tenant_offers(platform, results, worlds: list[World]) -> None:
    made = [o for r in results for o in r.offers]
    assert {o.region_id for o in made} == {w.region_id for w in worlds}
    offer_tenants = _tenant_of(platform, tables.offers, "id", {o.id for o in made})
    courier_tenants = _tenant_of(platform, tables.couriers, "id", {o.courier_id for o in made})
    order_tenants = _tenant_of(platform, tables.orders, "id",
                               {i for o in made for i in o.order_ids})
    owner = {w.region_id: w.tenant for w in worlds}
    for o in made:
        assert offer_tenants[o.id] == courier_tenants[o.courier_id] == owner[o.region_id]
        assert {order_tenants[i] for i in o.order_ids} == {owner[o.region_id]}
    for w in worlds:  # the offers' events too
        assert {t for _, t in _typed_event_tenants(platform, w.region_id)} == {w.tenant}


# --- dispatch ------------------------------------------------------------------------------

def test_the_region_listing_names_each_regions_tenant(platform):
    worlds = _worlds(platform)
    assert every_tenant.region_owners(platform.services) == {
        w.region_id: w.tenant for w in worlds}
    assert every_tenant.tenants_at_work(platform.services) == sorted([ACME, DEFAULT_TENANT])


def test_a_dispatch_round_serves_every_tenant_and_pairs_only_its_own_parties(platform):
    worlds = _worlds(platform)
    orders = {w.tenant: _confirmed_order(platform, w) for w in worlds}
    couriers = {w.tenant: _on_shift(platform, w) for w in worlds}
    results = DispatchWorker(platform.services, platform.container.live,
                             policy=GREEDY).run_once()
    assert current_tenant() == DEFAULT_TENANT  # the worker's own context is left as it was
    made = {(o.courier_id, o.order_ids) for r in results for o in r.offers}
    assert made == {(couriers[t], (orders[t].id,)) for t in (DEFAULT_TENANT, ACME)}
    _assert_same_tenant_offers(platform, results, worlds)


def test_the_fenced_dispatcher_leases_every_tenants_regions_and_runs_each_as_its_own(platform):
    worlds = _worlds(platform)
    for w in worlds:
        _confirmed_order(platform, w)
        _on_shift(platform, w)
    # The embedded dispatcher of `lastmile serve` and `lastmile dispatcher` alike: a keeper
    # listing the regions itself, rounds fenced by the leases.
    keeper = LeaseKeeper(platform.services, worker_id="w1", ttl_s=5.0, renew_every_s=1.0,
                         clock=ManualClock(start=0.0))
    assert set(keeper.tick()) == {w.region_id for w in worlds}
    worker = DispatchWorker(platform.services, platform.container.live, policy=GREEDY,
                            leases=keeper)
    results = worker.run_once()
    assert worker.stats.errors == 0 and worker.stats.fenced == 0
    assert sum(len(r.offers) for r in results) == 2
    _assert_same_tenant_offers(platform, results, worlds)


# --- housekeeping --------------------------------------------------------------------------

def test_housekeeping_expires_offers_flags_late_orders_and_ends_shifts_of_every_tenant(platform):
    worlds = _worlds(platform)
    late_at = 0.0
    for w in worlds:
        order = _confirmed_order(platform, w)
        cid = _on_shift(platform, w, hours=0.5)
        with acting_as(w.tenant):
            offers.make_offer(platform.services, courier_id=cid, order_ids=(order.id,),
                              actor=SYSTEM)
        late_at = max(late_at, order.eta.high_at)
    platform.clock.set(max(late_at, platform.clock.now() + 3600) + 60)
    assert run_housekeeping(platform.services, platform.container.live, owner="hk",
                            ttl_s=90.0)
    for w in worlds:
        with acting_as(w.tenant), platform.services.uow(read_only=True) as uow:
            courier = uow.couriers.get(w.seed.courier_ids[0])
            assert courier is not None and not courier.on_shift, w.tenant
            assert uow.offers.pending_in_region(w.region_id) == [], w.tenant
        types = _typed_event_tenants(platform, w.region_id)
        assert {("order.delayed", w.tenant), ("offer.expired", w.tenant)} <= types, w.tenant
        assert {tenant for _, tenant in types} == {w.tenant}


def test_one_tenants_failing_step_does_not_starve_the_others(platform):
    _worlds(platform)
    ran: list[str] = []

    def step() -> str:
        ran.append(current_tenant())
        if current_tenant() == ACME:  # sorted first: the default tenant must still run
            raise RuntimeError("acme is broken")
        return "done"

    with pytest.raises(RuntimeError, match="acme is broken"):
        every_tenant.for_each_tenant(platform.services, step)
    assert ran == [ACME, DEFAULT_TENANT]
    assert current_tenant() == DEFAULT_TENANT


# --- Drive senders -------------------------------------------------------------------------

class Recording:
    """A webhook transport and notification channel noting the tenant each call ran as."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []
        self.sent: list[tuple[str, str]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
        self.posts.append((url, current_tenant()))
        return 204

    def send(self, notification) -> None:  # type: ignore[no-untyped-def]
        assert notification.tenant == current_tenant()
        self.sent.append((notification.id, current_tenant()))


def _drive_in_both(platform, worlds: list[World]) -> dict[str, str]:
    """A webhook endpoint and a delivery per tenant; the endpoints' URLs by tenant."""
    urls = {}
    for w in worlds:
        with acting_as(w.tenant):
            merchant = w.seed.merchant_ids[0]
            url = f"https://hooks.example.test/{w.tenant.replace(':', '-')}"
            webhooks.register_endpoint(platform.services, merchant, url=url)
            req = replace(a_request(platform), merchant_id=merchant)
            drive.create_delivery(platform.services, req)
        urls[w.tenant] = url
    install_drive(platform.container)
    pump(platform)  # the relay hands each event to the producers as its tenant
    return urls


def test_the_webhook_sender_posts_every_tenants_messages_as_their_own(platform):
    worlds = _worlds(platform)
    urls = _drive_in_both(platform, worlds)
    rec = Recording()
    DriveWorkers(services=platform.services, transport=rec).webhook_tick()
    assert set(rec.posts) == {(urls[w.tenant], w.tenant) for w in worlds}
    for w in worlds:
        with acting_as(w.tenant):
            messages = webhooks.list_messages(platform.services, w.seed.merchant_ids[0])
        assert messages and {m.status.value for m in messages} == {"delivered"}, w.tenant
        assert {m.tenant for m in messages} == {w.tenant}


def test_the_threshold_pass_records_each_tenants_delay_in_its_tenant(platform):
    worlds = _worlds(platform)
    _drive_in_both(platform, worlds)
    platform.clock.advance(4 * 3600)
    DriveWorkers(services=platform.services, transport=Recording()).webhook_tick()
    for w in worlds:
        assert ("delivery.delayed", w.tenant) in _typed_event_tenants(platform, w.region_id)
        assert {t for _, t in _typed_event_tenants(platform, w.region_id)} == {w.tenant}


def test_the_notification_sender_sends_every_tenants_notices_as_their_own(platform):
    worlds = _worlds(platform)
    _drive_in_both(platform, worlds)
    rec = Recording()
    DriveWorkers(services=platform.services,
                 channels={"log": rec, "email": rec}).notification_tick()
    notices = _tenant_of(platform, td.notifications, "id", {i for i, _ in rec.sent})
    assert {t for _, t in rec.sent} == {DEFAULT_TENANT, ACME}
    assert all(notices[i] == t for i, t in rec.sent)
    for w in worlds:
        with acting_as(w.tenant), platform.services.uow(read_only=True) as uow:
            assert {n.status.value for n in uow.notifications.list()} == {"sent"}
            assert {n.tenant for n in uow.notifications.list()} == {w.tenant}
