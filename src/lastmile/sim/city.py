"""Build a scenario's cities on the platform (through the catalog use cases).

Merchants sit in clusters (restaurant rows), consumers anywhere in the square
service area, couriers start at random points; each courier gets a shift from
the scenario's patterns. Same scenario and seed -> same city.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from lastmile.app import catalog
from lastmile.app.context import Services
from lastmile.core.geo import EARTH_RADIUS_M, Point
from lastmile.core.ids import ConsumerId
from lastmile.core.model import VEHICLE_SPEED_MPS, Vehicle
from lastmile.core.orders import SYSTEM
from lastmile.sim.scenarios import CitySpec, Scenario

_MENU = (("Bowl", 1299), ("Wrap", 999), ("Side", 499), ("Drink", 349))
_CUISINES = ("Pizza", "Sushi", "Burgers", "Tacos", "Thai", "Salads", "Ramen", "Curry")
_VEHICLES = (Vehicle.BICYCLE, Vehicle.SCOOTER, Vehicle.CAR)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimMerchant:
    id: str
    region_id: str
    location: Point
    prep_time_s: int
    item_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimCourierSpec:
    id: str
    region_id: str
    vehicle: Vehicle
    speed_mps: float
    home: Point
    shift_start: float  # epoch seconds on the simulated clock
    shift_end: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SimRegion:
    id: str
    spec: CitySpec

    def random_point(self, rng: random.Random, margin: float = 0.95) -> Point:
        return offset(self.spec.centre, rng.uniform(-1, 1) * self.spec.half_km * 1000 * margin,
                      rng.uniform(-1, 1) * self.spec.half_km * 1000 * margin)


@dataclass(frozen=True, slots=True, kw_only=True)
class City:
    regions: tuple[SimRegion, ...]
    merchants: tuple[SimMerchant, ...]
    consumers: dict[str, tuple[ConsumerId, ...]]  # region id -> consumer ids
    couriers: tuple[SimCourierSpec, ...]


def offset(p: Point, east_m: float, north_m: float) -> Point:
    lat = p.lat + math.degrees(north_m / EARTH_RADIUS_M)
    lng = p.lng + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(p.lat))))
    return Point(lat=lat, lng=lng)


def _polygon(spec: CitySpec) -> tuple[Point, ...]:
    h = spec.half_km * 1000
    return tuple(offset(spec.centre, e * h, n * h) for e, n in ((-1, -1), (1, -1), (1, 1), (-1, 1)))


def _merchants(services: Services, region: SimRegion, rng: random.Random) -> list[SimMerchant]:
    spec = region.spec
    clusters = [region.random_point(rng, 0.6) for _ in range(spec.clusters)]
    out = []
    for i in range(spec.merchants):
        c = clusters[i % len(clusters)]
        loc = offset(c, rng.gauss(0, 350), rng.gauss(0, 350))
        prep = rng.choice([480, 600, 720, 900])
        m = catalog.create_merchant(services, region_id=region.id, location=loc, prep_time_s=prep,
                                    name=f"{_CUISINES[i % len(_CUISINES)]} #{i + 1}")
        items = tuple(
            catalog.upsert_item(services, m.id, item_id=None, name=name,
                                price_minor=price + rng.randrange(0, 300, 50), actor=SYSTEM).id
            for name, price in _MENU
        )
        out.append(SimMerchant(id=m.id, region_id=region.id, location=loc, prep_time_s=prep,
                               item_ids=items))
    return out


def _shift(scenario: Scenario, i: int, n: int, rng: random.Random) -> tuple[float, float]:
    """Courier ``i`` of ``n`` gets the pattern whose cumulative share covers i / n."""
    at, acc = (i + 0.5) / n, 0.0
    pattern = scenario.shifts[-1]
    for p in scenario.shifts:
        acc += p.share
        if at <= acc:
            pattern = p
            break
    jitter = rng.uniform(-pattern.jitter_min, pattern.jitter_min) * 60
    day = scenario.day_start
    return (day + pattern.start_h * 3600 + jitter, day + pattern.end_h * 3600 + jitter)


def build_city(services: Services, scenario: Scenario, rng: random.Random) -> City:
    """Create every region, merchant (with a menu), consumer and courier of the scenario."""
    regions, merchants, consumers, couriers = [], [], {}, []
    for spec in scenario.cities:
        r = catalog.create_region(services, name=spec.name, market=spec.market,
                                  time_zone=spec.time_zone, currency="USD",
                                  polygon=_polygon(spec), tax_rate_bp=900,
                                  region_id=f"reg_{spec.key}")
        region = SimRegion(id=r.id, spec=spec)
        regions.append(region)
        merchants.extend(_merchants(services, region, rng))
        consumers[region.id] = tuple(
            catalog.create_consumer(services, region_id=region.id, name=f"Consumer {i + 1}").id
            for i in range(spec.consumers))
        for i in range(spec.couriers):
            vehicle = _VEHICLES[i % len(_VEHICLES)]
            home = region.random_point(rng)
            c = catalog.create_courier(services, region_id=region.id, name=f"Courier {i + 1}",
                                       vehicle=vehicle, location=home)
            start, end = _shift(scenario, i, spec.couriers, rng)
            couriers.append(SimCourierSpec(id=c.id, region_id=region.id, vehicle=vehicle,
                                           speed_mps=VEHICLE_SPEED_MPS[vehicle], home=home,
                                           shift_start=start, shift_end=end))
    return City(regions=tuple(regions), merchants=tuple(merchants), consumers=consumers,
                couriers=tuple(couriers))
