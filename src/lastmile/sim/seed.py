"""Deterministic demo data: a region with merchants, menus, consumers and couriers.

Everything goes through the same use cases the API calls.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from lastmile.app import catalog, tenants
from lastmile.app.context import Services
from lastmile.core.geo import Point
from lastmile.core.model import Address, ItemOption, Region, Vehicle
from lastmile.core.orders import SYSTEM
from lastmile.core.tenancy import region_id_in

DEMO_REGION_ID = "reg_demo"
# Palo Alto, where DoorDash began (seed 000): a 10 km x 10 km box.
DEMO_CENTER = Point(lat=37.4419, lng=-122.1430)
_HALF_LAT, _HALF_LNG = 0.045, 0.057

_CUISINES = {
    "Pizza": [("Margherita", 1299), ("Pepperoni", 1499), ("Garlic knots", 599)],
    "Sushi": [("Salmon roll", 899), ("Tuna nigiri", 1099), ("Miso soup", 399)],
    "Burgers": [("Cheeseburger", 1099), ("Fries", 399), ("Milkshake", 599)],
    "Tacos": [("Carnitas taco", 449), ("Burrito", 1149), ("Chips & salsa", 399)],
    "Thai": [("Pad thai", 1399), ("Green curry", 1449), ("Spring rolls", 699)],
    "Salads": [("Caesar", 1199), ("Poke bowl", 1549), ("Lemonade", 399)],
}
_OPTIONS = [("extra", "Extra portion", 250), ("spicy", "Make it spicy", 0)]


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedSummary:
    region: Region
    merchant_ids: tuple[str, ...]
    consumer_ids: tuple[str, ...]
    courier_ids: tuple[str, ...]


def tenant_region_id(tenant: str, base: str = DEMO_REGION_ID) -> str:
    """The demo region's id in ``tenant`` (``core.tenancy.region_id_in``)."""
    return region_id_in(tenant, base)


def _jitter(rng: random.Random, center: Point, spread: float) -> Point:
    lat = min(DEMO_CENTER.lat + _HALF_LAT * 0.98, max(DEMO_CENTER.lat - _HALF_LAT * 0.98,
              center.lat + rng.gauss(0, spread)))
    lng = min(DEMO_CENTER.lng + _HALF_LNG * 0.98, max(DEMO_CENTER.lng - _HALF_LNG * 0.98,
              center.lng + rng.gauss(0, spread * 1.27)))
    return Point(lat=lat, lng=lng)


def random_point(rng: random.Random) -> Point:
    return Point(lat=DEMO_CENTER.lat + rng.uniform(-_HALF_LAT, _HALF_LAT) * 0.95,
                 lng=DEMO_CENTER.lng + rng.uniform(-_HALF_LNG, _HALF_LNG) * 0.95)


def create_demo_region(services: Services, region_id: str = DEMO_REGION_ID) -> Region:
    c = DEMO_CENTER
    polygon = (
        Point(lat=c.lat - _HALF_LAT, lng=c.lng - _HALF_LNG),
        Point(lat=c.lat - _HALF_LAT, lng=c.lng + _HALF_LNG),
        Point(lat=c.lat + _HALF_LAT, lng=c.lng + _HALF_LNG),
        Point(lat=c.lat + _HALF_LAT, lng=c.lng - _HALF_LNG),
    )
    # In the tenant's currency where it has one (its regions must use it), else dollars.
    currency = tenants.config_of(tenants.current(services)).currency or "USD"
    return catalog.create_region(
        services, region_id=region_id, name="Demo City (Palo Alto)", market="palo-alto",
        time_zone="America/Los_Angeles", currency=currency, polygon=polygon, tax_rate_bp=925,
    )


def seed_demo(services: Services, *, seed: int = 7, merchants: int = 24, consumers: int = 200,
              couriers: int = 30, region_id: str = DEMO_REGION_ID,
              progress: Callable[[int], None] | None = None) -> SeedSummary:
    """Create the demo region and its people; same ``seed`` -> same data.

    ``progress(n)`` is called after each merchant, consumer or courier created (n = 1),
    for a progress bar over ``merchants + consumers + couriers``.
    """
    rng = random.Random(seed)
    tick = progress or (lambda n: None)
    region = create_demo_region(services, region_id)
    clusters = [random_point(rng) for _ in range(4)]
    merchant_ids = []
    for i in range(merchants):
        merchant_ids.append(_merchant(services, rng, region.id, i, clusters))
        tick(1)
    consumer_ids = []
    for i in range(consumers):
        consumer_ids.append(catalog.create_consumer(
            services, region_id=region.id, name=f"Consumer {i + 1}",
            phone=f"+1650{i + 1:07d}",  # a tenant may require one (config.parties)
            addresses=(Address(label="home", location=random_point(rng),
                               line1=f"{rng.randrange(1, 999)} Demo St"),),
        ).id)
        tick(1)
    vehicles = [Vehicle.BICYCLE, Vehicle.SCOOTER, Vehicle.CAR]
    courier_ids = []
    for i in range(couriers):
        courier_ids.append(catalog.create_courier(
            services, region_id=region.id, name=f"Courier {i + 1}", vehicle=vehicles[i % 3],
            location=random_point(rng)).id)
        tick(1)
    return SeedSummary(region=region, merchant_ids=tuple(merchant_ids),
                       consumer_ids=tuple(consumer_ids), courier_ids=tuple(courier_ids))


def _merchant(services: Services, rng: random.Random, region_id: str, i: int,
              clusters: list[Point]) -> str:
    """The i-th demo merchant with its menu (cuisines in turn, prices and options drawn)."""
    cuisines = sorted(_CUISINES)
    cuisine = cuisines[i % len(cuisines)]
    m = catalog.create_merchant(
        services, region_id=region_id, name=f"{cuisine} #{i + 1}",
        location=_jitter(rng, clusters[i % len(clusters)], 0.006),
        prep_time_s=rng.choice([480, 600, 720, 900, 1200]),
    )
    for name, price in _CUISINES[cuisine]:
        options = tuple(ItemOption(id=o, name=n, price_delta_minor=d)
                        for o, n, d in _OPTIONS if rng.random() < 0.5)
        catalog.upsert_item(services, m.id, item_id=None, name=name,
                            price_minor=price + rng.randrange(0, 200, 50), options=options,
                            actor=SYSTEM)
    return m.id

