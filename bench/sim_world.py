"""The city simulator's own cost at big-city scale, the platform left out.

Runs ``sim.world.World`` (SimPy processes: consumers, kitchens, couriers, dispatch tick)
for a day on a null platform: an in-memory ``Actions`` that answers at once and
whose dispatch offers each waiting order to the next free courier. What is left
is the world's share of a ``lastmile simulate`` run: events, process switches,
random draws, bookkeeping. Prints one JSON line per run; the last line is the
summary ``{"orders", "couriers", "events", "wall_s", "cpu_s", "us_per_event",
"us_per_order"}``.

    .venv/bin/python bench/sim_world.py                 # 50,000 orders, 2,000 couriers, 24 h
    .venv/bin/python bench/sim_world.py --scale 0.1     # a tenth of that (quick)
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time
from dataclasses import replace

from lastmile.core.geo import Point
from lastmile.core.model import VEHICLE_SPEED_MPS, Vehicle
from lastmile.sim.actions import OfferView, OrderAsk, PlacedView, QuoteView
from lastmile.sim.city import City, SimCourierSpec, SimMerchant, SimRegion, offset
from lastmile.sim.scenarios import PALO_ALTO, Scenario, ShiftPattern, local_midnight
from lastmile.sim.world import World

_LOOK = 16


def _d2(a: Point, b: Point) -> float:
    return (a.lat - b.lat) ** 2 + (a.lng - b.lng) ** 2


_CONVERSION = 0.92 * 2.718281828 ** (-100 / 1500)  # fees 600 -> $1 over the $5 threshold
_DAY_SHAPE = 24 + (2.0 * 0.8 + 2.5 * 1.0) * (2 * 3.14159265) ** 0.5  # integral of the curve


class NullPlatform:
    """Answers every action at once. Dispatch: each waiting order, oldest first, to the
    nearest (by last ping) of the first ``_LOOK`` free couriers."""

    def __init__(self, clock: list[float], shops: dict[str, Point]):
        self.clock = clock
        self.shops = shops
        self.free: dict[str, None] = {}  # on shift, no offer, not holding (insertion order)
        self.at: dict[str, Point] = {}
        self.holder: dict[str, str] = {}  # order -> courier
        self.shop_of: dict[str, Point] = {}
        self.waiting: list[str] = []
        self.offers: dict[str, OfferView] = {}
        self.n = 0

    def quote(self, ask: OrderAsk) -> QuoteView:
        return QuoteView(fees_minor=600, eta_expected_at=self.clock[0] + 1_800)

    def place(self, ask: OrderAsk, *, key: str) -> PlacedView:
        self.n += 1
        oid = f"o{self.n}"
        self.waiting.append(oid)
        self.shop_of[oid] = self.shops[ask.merchant_id]
        now = self.clock[0]
        return PlacedView(order_id=oid, placed_at=now, eta_expected_at=now + 1_800,
                          eta_high_at=now + 2_700, fees_minor=600, currency="USD")

    def confirm(self, merchant_id: str, order_id: str, prep_s: int) -> None: ...
    def mark_ready(self, merchant_id: str, order_id: str) -> None: ...

    def cancel(self, consumer_id: str, order_id: str, reason: str) -> None:
        if order_id in self.waiting:
            self.waiting.remove(order_id)
        courier_id = self.holder.pop(order_id, None)
        if courier_id is not None:
            self.free[courier_id] = None  # single-order offers: the courier turns back

    def start_shift(self, courier_id: str, device_id: str, duration_s: int) -> None:
        self.free[courier_id] = None

    def end_shift(self, courier_id: str) -> None:
        self.free.pop(courier_id, None)

    def ping(self, courier_id: str, device_id: str, at: Point) -> None:
        self.at[courier_id] = at

    def current_offer(self, courier_id: str) -> OfferView | None:
        return self.offers.get(courier_id)

    def accept(self, courier_id: str, offer_id: str) -> None:
        for order_id in self.offers.pop(courier_id).order_ids:
            self.holder[order_id] = courier_id

    def decline(self, courier_id: str, offer_id: str) -> None:
        self.waiting.extend(self.offers.pop(courier_id).order_ids)
        self.free[courier_id] = None

    def arrive(self, courier_id: str, order_id: str) -> None: ...
    def pick_up(self, courier_id: str, order_id: str) -> None: ...

    def deliver(self, courier_id: str, order_id: str) -> None:
        self.holder.pop(order_id, None)
        self.free[courier_id] = None  # single-order offers: free again after the drop

    def dispatch(self, region_ids: tuple[str, ...]) -> tuple[str, ...]:
        offered = []
        while self.waiting and self.free:
            order_id = self.waiting.pop(0)
            shop = self.shop_of[order_id]
            look = list(itertools.islice(self.free, _LOOK))
            courier_id = min(look, key=lambda c: _d2(self.at.get(c, shop), shop))
            del self.free[courier_id]
            self.offers[courier_id] = OfferView(id=f"of-{order_id}", order_ids=(order_id,))
            offered.append(courier_id)
        return tuple(offered)


def big_city(couriers: int, merchants: int, rng: random.Random) -> tuple[City, Scenario]:
    spec = replace(PALO_ALTO, half_km=8.0, merchants=merchants, couriers=couriers,
                   consumers=5_000)
    region = SimRegion(id="reg_big", spec=spec)
    shops = tuple(SimMerchant(id=f"m{i}", region_id=region.id,
                              location=region.random_point(rng, 0.8),
                              prep_time_s=rng.choice([480, 600, 720, 900]), item_ids=("i1",))
                  for i in range(merchants))
    shifts = (ShiftPattern(start_h=0.0, end_h=24.0, share=0.2),
              ShiftPattern(start_h=10.5, end_h=14.5, share=0.4),
              ShiftPattern(start_h=16.5, end_h=21.5, share=0.4))
    fleet = []
    day = local_midnight(spec.time_zone)
    for i in range(couriers):
        pattern = shifts[0] if i % 5 == 0 else shifts[1 + i % 2]
        vehicle = (Vehicle.BICYCLE, Vehicle.SCOOTER, Vehicle.CAR)[i % 3]
        fleet.append(SimCourierSpec(
            id=f"c{i:05d}", region_id=region.id, vehicle=vehicle,
            speed_mps=VEHICLE_SPEED_MPS[vehicle],
            home=offset(spec.centre, rng.uniform(-1, 1) * 7_000, rng.uniform(-1, 1) * 7_000),
            shift_start=day + pattern.start_h * 3600,
            shift_end=day + pattern.end_h * 3600))
    city = City(regions=(region,), merchants=shops,
                consumers={region.id: tuple(f"k{i}" for i in range(spec.consumers))},
                couriers=tuple(fleet))
    return city, Scenario(name="big-day", description="bench", cities=(spec,), start_h=0.0,
                          hours=24.0, base_per_h=1.0, shifts=shifts)


def run(orders: int, couriers: int, merchants: int, seed: int) -> dict[str, object]:
    city, scenario = big_city(couriers, merchants, random.Random(seed))
    scenario = replace(scenario, base_per_h=orders / _CONVERSION / _DAY_SHAPE)
    clock = [scenario.day_start]

    class Driver:
        def now(self) -> float:
            return clock[0]

        def advance_to(self, t: float) -> None:
            clock[0] = max(clock[0], t)

    platform = NullPlatform(clock, {m.id: m.location for m in city.merchants})
    world = World(city=city, scenario=scenario, actions=platform, driver=Driver(),
                  seed=seed)
    steps = [0]

    def count(t: float, log: object) -> None:
        steps[0] += 1

    c0, t0 = time.process_time(), time.perf_counter()
    log = world.run(progress=count, progress_every_s=0.0)  # every step: counts them
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    placed = len(log.orders)
    return {"orders": placed, "delivered": log.delivered, "couriers": couriers,
            "merchants": merchants, "events": steps[0], "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "us_per_event": round(cpu / max(1, steps[0]) * 1e6, 2),
            "us_per_order": round(cpu / max(1, placed) * 1e6, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="x 50,000 orders, 2,000 couriers")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    result = run(orders=round(50_000 * args.scale), couriers=max(3, round(2_000 * args.scale)),
                 merchants=max(4, round(1_500 * args.scale)), seed=args.seed)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
