"""Isolation, as a property (issue 9): random operations of two tenants on one deployment,
through the use cases on SQLite and PostgreSQL. No read returns the other tenant's rows,
another tenant's id is 404 whatever the operation, and the same external_delivery_id or
Idempotency-Key in both tenants names two things, never one.

The platform (and its database) lives across examples, so later examples also meet the
rows of earlier ones; ``World`` remembers which tenant made what.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from drive_helpers import a_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lastmile.adapters.db import tables as t
from lastmile.adapters.db import tables_drive as td
from lastmile.app import catalog, drive, fulfilment, queries
from lastmile.app.auth import Principal, authenticate, issue_api_key
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.app.tenancy import acting_as, platform_scope
from lastmile.app.tenants import create_tenant
from lastmile.core.errors import Conflict, NotFound
from lastmile.core.geo import Point
from lastmile.core.model import Vehicle
from lastmile.core.orders import SYSTEM
from lastmile.sim.seed import DEMO_CENTER, create_demo_region, tenant_region_id

A, B = "acme:live", "bravo:live"
DROP = Point(lat=37.445, lng=-122.15)
KINDS = ("merchant", "consumer", "courier", "order")


@dataclass
class World:
    """What each tenant created, as the test saw it."""

    owner: dict[str, str] = field(default_factory=dict)  # any id -> its tenant
    made: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    deliveries: dict[tuple[str, str, str], str] = field(default_factory=dict)
    placed: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # plaintext -> tenant

    def add(self, tenant: str, kind: str, id_: str) -> None:
        self.owner[id_] = tenant
        self.made[tenant, kind].append(id_)

    def some(self, tenant: str, kind: str, i: int) -> str | None:
        ids = self.made[tenant, kind]
        return ids[i % len(ids)] if ids else None


def _other(tenant: str) -> str:
    return B if tenant == A else A


def _setup(platform) -> World:  # type: ignore[no-untyped-def]
    world = World()
    svc = platform.services
    for tenant in (A, B):
        create_tenant(svc, tenant)
        with acting_as(tenant):
            region = create_demo_region(svc, tenant_region_id(tenant))
            world.add(tenant, "region", region.id)
            for kind in ("merchant", "consumer", "courier"):
                _create(platform, world, tenant, kind)
    return world


def _create(platform, world: World, tenant: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    svc, region = platform.services, world.made[tenant, "region"][0]
    if kind == "merchant":
        m = catalog.create_merchant(svc, region_id=region, name="M", location=DEMO_CENTER,
                                    prep_time_s=600)
        catalog.upsert_item(svc, m.id, item_id=None, name="Soup", price_minor=900, actor=SYSTEM)
        world.add(tenant, kind, m.id)
    elif kind == "consumer":
        world.add(tenant, kind, catalog.create_consumer(svc, region_id=region, name="C").id)
    else:
        world.add(tenant, kind, catalog.create_courier(
            svc, region_id=region, name="R", vehicle=Vehicle.BICYCLE, location=DEMO_CENTER).id)


def _get(platform, kind: str, id_: str) -> str:  # type: ignore[no-untyped-def]
    svc = platform.services
    ops = Principal(role="ops", subject_id="ops-1")
    found = {"merchant": lambda: queries.get_merchant(svc, id_).id,
             "consumer": lambda: queries.get_consumer(svc, id_).id,
             "courier": lambda: queries.get_courier(svc, id_).id,
             "order": lambda: queries.get_order(svc, id_, who=ops).id}[kind]()
    return str(found)


def _step(platform, world: World, op: str, tenant: str, i: int) -> None:  # type: ignore[no-untyped-def]
    svc = platform.services
    with acting_as(tenant):
        ops = Principal(role="ops", subject_id="ops-1", tenant=tenant)
        if op.startswith("create_"):
            _create(platform, world, tenant, op.removeprefix("create_"))
        elif op == "place_order":  # Idempotency-Key k0..k2, the same strings in both tenants
            consumer, merchant = world.some(tenant, "consumer", i), world.some(tenant, "merchant", i)
            assert consumer and merchant
            m = queries.get_merchant(svc, merchant)
            key = f"k{i % 3}"
            req = OrderRequest(consumer_id=consumer, merchant_id=m.id, dropoff=DROP,
                               lines=(LineRequest(item_id=m.menu[0].id, quantity=1),))
            seen = world.placed.get((tenant, consumer, key))
            if seen is not None and seen[1] != m.id:  # the key, reused for another body
                with pytest.raises(Conflict, match="idempotency_key_reused"):
                    place_order(svc, req, idempotency_key=key)
                return
            placed = place_order(svc, req, idempotency_key=key)
            first = world.placed.setdefault((tenant, consumer, key), (placed.order.id, m.id))[0]
            assert placed.order.id == first and placed.replayed == (first in world.owner)
            if not placed.replayed:
                world.add(tenant, "order", placed.order.id)
        elif op == "drive":  # external_delivery_id ext-0..ext-2 in both tenants
            merchant = world.some(tenant, "merchant", i)
            ext = f"ext-{i % 3}"
            view = drive.create_delivery(svc, a_request(platform, merchant_id=merchant,
                                                        external_delivery_id=ext))
            first = world.deliveries.setdefault((tenant, str(merchant), ext), view.order.id)
            assert view.order.id == first
            if not view.replayed:
                world.add(tenant, "order", view.order.id)
            assert drive.get_delivery(svc, str(merchant), ext).order.id == first
        elif op.startswith("get_"):  # an id of either tenant: own found, other's 404
            kind = op.removeprefix("get_")
            whose = tenant if i % 2 else _other(tenant)
            id_ = world.some(whose, kind, i // 2)
            if id_ is None:
                return
            if whose == tenant:
                assert _get(platform, kind, id_) == id_
            else:
                with pytest.raises(NotFound):
                    _get(platform, kind, id_)
        elif op == "list":
            _assert_lists_are_own(platform, world, tenant, ops)
        elif op == "update":  # a menu edit of either tenant's merchant
            whose = tenant if i % 2 else _other(tenant)
            merchant = world.some(whose, "merchant", i // 2)
            assert merchant
            edit = lambda: catalog.upsert_item(svc, merchant, item_id=None,  # noqa: E731
                                               name=f"Dish {i}", price_minor=500, actor=SYSTEM)
            if whose == tenant:
                edit()
            else:
                with pytest.raises(NotFound):
                    edit()
        elif op == "cancel":  # an order change: the other tenant's order is not there
            whose = tenant if i % 2 else _other(tenant)
            order = world.some(whose, "order", i // 2)
            if order is None or whose == tenant:
                return
            with pytest.raises(NotFound):
                fulfilment.cancel_order(svc, order, reason="test", actor=SYSTEM)
        elif op == "api_key":  # a key for either tenant's consumer, issued in this tenant
            whose = tenant if i % 2 else _other(tenant)
            consumer = world.some(whose, "consumer", i // 2)
            assert consumer
            if whose == tenant:
                plaintext = issue_api_key(svc, role="consumer", subject_id=consumer)[1]
                world.keys[plaintext] = tenant
            else:
                with pytest.raises(NotFound):
                    issue_api_key(svc, role="consumer", subject_id=consumer)
    for plaintext, owner in world.keys.items():  # a key always says its own tenant
        assert authenticate(svc, plaintext).tenant == owner


def _assert_lists_are_own(platform, world: World, tenant: str, ops: Principal) -> None:  # type: ignore[no-untyped-def]
    svc = platform.services
    listed = {o.id for o in queries.list_orders(svc, who=ops, statuses=None, limit=500)}
    assert listed == set(world.made[tenant, "order"])
    assert {r.id for r in queries.list_regions(svc)} == set(world.made[tenant, "region"])
    own_region = world.made[tenant, "region"][0]
    near = queries.merchants_near(svc, region_id=own_region, at=DEMO_CENTER, radius_m=20_000,
                                  limit=50)
    assert {h.merchant.id for h in near.hits} <= set(world.made[tenant, "merchant"])
    for whose in (A, B):
        for merchant in world.made[whose, "merchant"]:
            got = {v.order.id for v in drive.list_deliveries(svc, merchant, limit=50)}
            assert got <= set(world.made[tenant, "order"])
            assert whose == tenant or got == set()


def _assert_rows_are_where_they_belong(platform, world: World) -> None:  # type: ignore[no-untyped-def]
    """Read across tenants (the platform's view): each row carries its maker's tenant."""
    by_kind = {"merchant": t.merchants, "consumer": t.consumers, "courier": t.couriers,
               "order": t.orders, "region": t.regions}
    with platform_scope(), platform.services.uow(read_only=True) as uow:
        conn = uow.orders.conn  # type: ignore[attr-defined]
        for kind, table in by_kind.items():
            for tenant in (A, B):
                ids = world.made[tenant, kind]
                if ids:
                    rows = conn.execute(sa.select(table.c.id, table.c.tenant_id)
                                        .where(table.c.id.in_(ids))).all()
                    assert {r.tenant_id for r in rows} == {tenant} and len(rows) == len(ids)
        for (tenant, merchant, ext), order_id in world.deliveries.items():
            row = conn.execute(sa.select(td.deliveries.c.tenant_id, td.deliveries.c.order_id)
                               .where(td.deliveries.c.merchant_id == merchant,
                                      td.deliveries.c.external_delivery_id == ext)).one()
            assert (row.tenant_id, row.order_id) == (tenant, order_id)
        keys = conn.execute(sa.select(t.idempotency_keys.c.tenant_id,
                                      t.idempotency_keys.c.resource_id)).all()
        for row in keys:
            if row.resource_id in world.owner:
                assert world.owner[row.resource_id] == row.tenant_id


operations = st.lists(st.tuples(
    st.sampled_from(["create_merchant", "create_consumer", "create_courier", "place_order",
                     "place_order", "drive", "drive", "get_merchant", "get_consumer",
                     "get_courier", "get_order", "get_order", "list", "update", "cancel",
                     "api_key"]),
    st.sampled_from([A, B]), st.integers(0, 7)), min_size=1, max_size=20)


@pytest.mark.slow
def test_no_operation_of_one_tenant_reads_or_writes_the_others_rows(platform):
    world = _setup(platform)

    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(ops=operations)
    def run(ops: list[tuple[str, str, int]]) -> None:
        for op, tenant, i in ops:
            _step(platform, world, op, tenant, i)
        _assert_rows_are_where_they_belong(platform, world)

    run()
    assert world.made[A, "order"] and world.made[B, "order"]  # both tenants did work
