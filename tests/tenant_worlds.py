"""Tenants with their own seeded city, for tests of what differs or is hidden per tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lastmile.app import fulfilment, queries
from lastmile.app.auth import issue_api_key
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.app.tenancy import acting_as
from lastmile.app.tenants import create_tenant
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind, Order
from lastmile.sim.seed import SeedSummary, seed_demo, tenant_region_id

DROP = Point(lat=37.445, lng=-122.15)


@dataclass
class World:
    tenant: str
    seed: SeedSummary

    @property
    def region_id(self) -> str:
        return self.seed.region.id


def tenant_world(services: Any, tenant: str, config: dict[str, Any] | None = None, *,
                 seed: int = 5) -> World:
    """``tenant`` created with ``config`` and seeded (same ``seed``: the same city, menus
    and prices as any other tenant seeded alike) in its own region."""
    create_tenant(services, tenant, config=config)
    with acting_as(tenant):
        summary = seed_demo(services, seed=seed, merchants=2, consumers=2, couriers=2,
                            region_id=tenant_region_id(tenant))
    return World(tenant=tenant, seed=summary)


def basket(services: Any, world: World, *, qty: int = 1) -> OrderRequest:
    """The same basket in any world seeded alike: the first item of the first merchant."""
    with acting_as(world.tenant):
        m = queries.get_merchant(services, world.seed.merchant_ids[0])
    return OrderRequest(consumer_id=world.seed.consumer_ids[0], merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=qty),), dropoff=DROP)


def confirmed_order(services: Any, world: World, key: str = "k") -> Order:
    with acting_as(world.tenant):
        order = place_order(services, basket(services, world), idempotency_key=key).order
        actor = Actor(kind=ActorKind.MERCHANT, id=order.merchant_id)
        return fulfilment.confirm_order(services, order.id, prep_estimate_s=600, actor=actor)


def courier_on_shift(services: Any, world: World, i: int = 0, *, ends_at: float) -> str:
    cid = world.seed.courier_ids[i]
    with acting_as(world.tenant):
        fulfilment.start_shift(services, cid, device_id=f"{world.tenant}-d{i}", ends_at=ends_at,
                               actor=SYSTEM)
    return cid


def ops_key(services: Any, world: World) -> str:
    with acting_as(world.tenant):
        return issue_api_key(services, role="ops", subject_id=f"ops-{world.tenant}")[1]
