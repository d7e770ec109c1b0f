"""The simulated city with the live-city policies on, through the real use cases (SQLite, a
manual clock): a simulated courier rides a stacked offer's route to both merchants and
both doors, and a courier whose order is moved to a sooner courier stops going to that
merchant and goes on with its day. Small scripted cities: no random demand, every offer
accepted after 5 s, fixed kitchens and rides (docs/stacking.md, docs/reassignment.md)."""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import simpy

from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.app import catalog
from lastmile.bootstrap import Container, build
from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.geo import Point
from lastmile.core.model import VEHICLE_SPEED_MPS, Vehicle
from lastmile.core.orders import SYSTEM
from lastmile.settings import Settings
from lastmile.sim.actions import DirectActions, OrderAsk
from lastmile.sim.city import City, SimCourierSpec, SimMerchant, SimRegion, offset
from lastmile.sim.model import WorldConfig
from lastmile.sim.scenarios import Scenario, get_scenario
from lastmile.sim.simulate_command import ManualDriver
from lastmile.sim.world import World

# No random demand (the script places the orders), kitchens exactly as estimated.
SCENARIO: Scenario = replace(get_scenario("tiny"), base_per_h=0.0, prep_sigma=0.0, hours=2.0)
START = SCENARIO.day_start + SCENARIO.start_h * 3600
CENTRE = SCENARIO.cities[0].centre
CONFIG = WorldConfig(accept_p=1.0, respond_s=(5.0, 5.0), confirm_s=(10.0, 10.0),
                     travel_noise=0.0, patience_s=7_200.0)


@dataclass
class _Town:
    container: Container
    world: World
    merchants: list[SimMerchant]
    couriers: list[SimCourierSpec]
    consumer: str

    def events(self, order_id: str) -> list[tuple[str, dict[str, Any]]]:
        with self.container.services.uow(read_only=True) as uow:
            return [(e.type, dict(e.data)) for e in uow.events.for_subject(order_id)]

    def courier_events(self, courier_id: str) -> list[tuple[str, dict[str, Any]]]:
        return self.events(courier_id)


def _town(tmp: Path, *, policy: DispatchPolicy, merchants: list[tuple[float, float]],
          couriers: list[tuple[float, float, float]]) -> _Town:
    """A region around the tiny scenario's centre: merchants at (east_m, north_m), couriers
    at (east_m, north_m, shift start s after the run starts), bicycles, 600 s kitchens."""
    clock = ManualClock(start=START)
    container = build(Settings(data_dir=tmp), clock=clock, ids=SequentialIds(),
                      rng=random.Random(1))
    s = container.services
    spec = SCENARIO.cities[0]
    h = spec.half_km * 1000
    region = catalog.create_region(
        s, name=spec.name, market=spec.market, time_zone=spec.time_zone, currency="USD",
        polygon=tuple(offset(CENTRE, e * h, n * h) for e, n in ((-1, -1), (1, -1), (1, 1),
                                                                 (-1, 1))),
        tax_rate_bp=900, region_id="reg_pa")
    ms = []
    for i, (e, n) in enumerate(merchants):
        loc = offset(CENTRE, e, n)
        m = catalog.create_merchant(s, region_id=region.id, location=loc, prep_time_s=600,
                                    name=f"Merchant {i + 1}")
        item = catalog.upsert_item(s, m.id, item_id=None, name="Bowl", price_minor=1299,
                                   actor=SYSTEM)
        ms.append(SimMerchant(id=m.id, region_id=region.id, location=loc, prep_time_s=600,
                              item_ids=(item.id,)))
    consumer = catalog.create_consumer(s, region_id=region.id, name="Consumer").id
    cs = []
    for i, (e, n, start_s) in enumerate(couriers):
        home = offset(CENTRE, e, n)
        c = catalog.create_courier(s, region_id=region.id, name=f"Courier {i + 1}",
                                   vehicle=Vehicle.BICYCLE, location=home)
        cs.append(SimCourierSpec(id=c.id, region_id=region.id, vehicle=Vehicle.BICYCLE,
                                 speed_mps=VEHICLE_SPEED_MPS[Vehicle.BICYCLE], home=home,
                                 shift_start=START + start_s, shift_end=START + 4 * 3600))
    city = City(regions=(SimRegion(id=region.id, spec=spec),), merchants=tuple(ms),
                consumers={region.id: (consumer,)}, couriers=tuple(cs))
    actions = DirectActions(s, container.tracking, policy=policy)
    world = World(city=city, scenario=SCENARIO, actions=actions, driver=ManualDriver(clock),
                  seed=1, config=CONFIG)
    return _Town(container=container, world=world, merchants=ms, couriers=cs,
                 consumer=consumer)


COURIER_STEPS = ("order.assigned", "order.reassignment_offered", "order.reassigned",
                 "order.courier_at_pickup", "order.picked_up", "order.courier_at_dropoff",
                 "order.delivered", "order.unassigned", "order.cancelled")


def _steps(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """An order's courier-side events, in the order they were recorded."""
    return [t for t, _ in events if t in COURIER_STEPS]


def _order_at(town: _Town, at_s: float, merchant: int, door: Point, out: list[str]
              ) -> Generator[simpy.Event, Any, None]:
    yield town.world.env.timeout(START + at_s - town.world.env.now)
    m = town.merchants[merchant]
    rec = town.world.place("reg_pa", OrderAsk(consumer_id=town.consumer, merchant_id=m.id,
                                              item_id=m.item_ids[0], quantity=1, dropoff=door))
    assert rec is not None
    out.append(rec.id)


def test_a_simulated_courier_rides_a_stacked_route_and_delivers_both_orders(tmp_path):
    """Two merchants 300 m apart, two doors 200 m apart 1.5 km away, one courier at the first
    merchant: the round stacks the two orders; the courier picks up at each merchant in the
    route's order, then drops off at each door in the route's order."""
    town = _town(tmp_path, policy=DispatchPolicy(allow_stacking=True),
                 merchants=[(0.0, 0.0), (300.0, 0.0)], couriers=[(0.0, 0.0, -60.0)])
    placed: list[str] = []
    env = town.world.env
    env.process(_order_at(town, 5.0, 0, offset(CENTRE, 100.0, 1_500.0), placed))
    env.process(_order_at(town, 5.0, 1, offset(CENTRE, 300.0, 1_500.0), placed))
    try:
        log = town.world.run()
        a, b = placed
        courier = town.couriers[0].id
        with town.container.services.uow(read_only=True) as uow:
            offers = [o for o in uow.offers.pending_in_region("reg_pa")]
            made = [e for e in uow.events.of_types("reg_pa", ("offer.made",), since=START)]
        assert offers == []
        (stack,) = [e for e in made if e.data.get("stack_id")]
        stops = [(s["kind"], s["merchant_id"], tuple(s["order_ids"]))
                 for s in stack.data["stops"]]
        assert [k for k, _, _ in stops] == ["pickup", "pickup", "dropoff", "dropoff"]
        assert set(stack.data["order_ids"]) == {a, b}
        for order_id in (a, b):
            rec = log.orders[order_id]
            assert rec.courier_id == courier and rec.delivered_at is not None
            assert _steps(town.events(order_id)) == [
                "order.assigned", "order.courier_at_pickup", "order.picked_up",
                "order.courier_at_dropoff", "order.delivered"]
        first_pick, second_pick = (o for _, _, (o,) in stops[:2])
        first_door, second_door = (o for _, _, (o,) in stops[2:])
        recs = log.orders
        # Pickups in the route's order, both before the first door; doors in its order.
        assert (recs[first_pick].picked_up_at < recs[second_pick].picked_up_at
                < recs[first_door].delivered_at < recs[second_door].delivered_at)
        assert log.refusals == {}
        run = log.couriers[courier]
        assert run.delivered == 2 and run.withdrawn == 0
    finally:
        town.container.close()


def test_a_withdrawn_order_is_delivered_by_the_other_courier_and_the_first_goes_on(tmp_path):
    """Courier A (5.3 km from the merchant) takes the first order; B starts its shift next to
    the merchant two minutes later and the round moves the order to B, who picks it up
    ~20 min sooner. A is told, stops riding to the merchant, and later takes and delivers
    the next order of the day."""
    town = _town(tmp_path, policy=DispatchPolicy(allow_reassignment=True),
                 merchants=[(0.0, 2_500.0), (0.0, -2_500.0)],
                 couriers=[(0.0, -2_800.0, -60.0), (50.0, 2_500.0, 100.0)])
    placed: list[str] = []
    env = town.world.env
    env.process(_order_at(town, 5.0, 0, offset(CENTRE, 500.0, 1_500.0), placed))
    # The next order, near A, after the move: A (idle again) is the courier for it.
    env.process(_order_at(town, 900.0, 1, offset(CENTRE, 500.0, -2_500.0), placed))
    try:
        log = town.world.run()
        first, second = placed
        a_id, b_id = (c.id for c in town.couriers)
        trail = town.events(first)
        assert _steps(trail) == ["order.assigned", "order.reassignment_offered",
                                 "order.reassigned", "order.courier_at_pickup",
                                 "order.picked_up", "order.courier_at_dropoff",
                                 "order.delivered"]
        assert [d for t, d in trail if t == "order.assigned"][0]["courier_id"] == a_id
        moved = dict(trail)["order.reassigned"]
        assert moved["courier_id"] == b_id and moved["from_courier_id"] == a_id
        assert log.orders[first].courier_id == b_id and log.orders[first].delivered_at
        withdrawn = [d for t, d in town.courier_events(a_id)
                     if t == "courier.assignment_withdrawn"]
        assert [d["order_ids"] for d in withdrawn] == [[first]]
        a_run, b_run = log.couriers[a_id], log.couriers[b_id]
        assert a_run.withdrawn == 1 and b_run.moved_in == 1
        # A never reached the first merchant: told, not refused at the counter
        assert all(t != "order.courier_at_pickup" or d.get("courier_id") != a_id
                   for t, d in trail)
        assert log.refusals == {}
        assert log.orders[second].courier_id == a_id and log.orders[second].delivered_at
        assert a_run.delivered == 1 and b_run.delivered == 1
    finally:
        town.container.close()
