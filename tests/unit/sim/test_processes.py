"""The world's SimPy processes on a fake platform: couriers told by interrupts (offers,
cancellations), the offer decision as one call, same seed -> same run, and the merchant
pick through the grid equal to the full scan."""

from __future__ import annotations

import random
from dataclasses import replace

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from lastmile.core.geo import Point, haversine_m
from lastmile.core.model import Vehicle
from lastmile.sim.actions import OfferView
from lastmile.sim.city import City, SimCourierSpec, SimMerchant, SimRegion
from lastmile.sim.couriers import Cancelled, Crew, Offered, OfferSeen, courier
from lastmile.sim.kpis import compute_kpis
from lastmile.sim.model import CourierRun, OrderRecord, Phase, WorldConfig, WorldLog
from lastmile.sim.scenarios import get_scenario
from lastmile.sim.world import World, _MerchantGrid

from .fake_platform import FakePlatform

HOME = Point(lat=37.44, lng=-122.14)
SHOP = Point(lat=37.45, lng=-122.14)  # 1.1 km north
DOOR = Point(lat=37.46, lng=-122.14)


class _Rig:
    """One courier process on an environment, with a fake platform and a scripted decision."""

    def __init__(self, *, answer: tuple[bool, float] = (True, 10.0), shift_end: float = 7_200):
        self.env = simpy.Environment(initial_time=0)
        self.log = WorldLog(start=0, end=10_000)
        self.platform = FakePlatform(lambda: self.env.now)
        self.seen: list[OfferSeen] = []
        self.answer = answer
        spec = SimCourierSpec(id="c1", region_id="r", vehicle=Vehicle.BICYCLE, speed_mps=4.5,
                              home=HOME, shift_start=0, shift_end=shift_end)
        self.run = CourierRun(spec=spec, pos=HOME)
        self.log.enrol(self.run)
        shop = SimMerchant(id="m1", region_id="r", location=SHOP, prep_time_s=600,
                           item_ids=("i1",))
        self.crew = Crew(env=self.env, actions=self.platform, rng=random.Random(1),
                         cfg=WorldConfig(travel_noise=0.0), decide=self._decide, log=self.log,
                         merchants={"m1": shop}, now=lambda: self.env.now)
        self.proc = self.env.process(courier(self.crew, self.run))

    def _decide(self, seen: OfferSeen) -> tuple[bool, float]:
        self.seen.append(seen)
        return self.answer

    def order(self, oid: str, *, ready_at: float | None = 200.0) -> OrderRecord:
        rec = OrderRecord(id=oid, region_id="r", merchant_id="m1", consumer_id="k",
                          dropoff=DOOR, placed_at=0, eta_expected_at=1_800, eta_high_at=2_400,
                          fees_minor=600, pickup=SHOP, ready_at=ready_at)
        self.log.placed(rec)
        return rec

    def offer(self, *oids: str) -> None:
        offer = OfferView(id=f"of-{oids[0]}", order_ids=oids)
        self.platform.offers["c1"] = offer
        self.proc.interrupt(Offered(offer))

    def actions(self) -> list[tuple[str, ...]]:
        return [c[1:] for c in self.platform.calls if c[1] not in ("ping",)]


def test_an_offered_courier_decides_once_then_picks_up_and_delivers():
    rig = _Rig(answer=(True, 10.0))
    rec = rig.order("o1")
    rig.env.run(until=5)
    assert rig.run.phase is Phase.IDLE and rig.log.idle == {"c1"}
    rig.offer("o1")
    rig.env.run(until=6)
    assert rig.run.phase is Phase.DECIDING and len(rig.seen) == 1
    assert rig.seen[0].orders == (rec,) and rig.seen[0].now == 5
    rig.env.run(until=3_000)
    assert rig.actions() == [("start_shift", "c1"), ("accept", "c1", "of-o1"),
                             ("arrive", "c1", "o1"), ("pick_up", "c1", "o1"),
                             ("arrive", "c1", "o1"), ("deliver", "c1", "o1")]
    assert rec.courier_id == "c1" and rec.picked_up_at is not None
    assert rec.delivered_at is not None and rig.log.delivered == 1
    assert rig.run.phase is Phase.IDLE and rig.run.pos == DOOR
    # busy from the answer (t = 15) to the handover
    assert rig.run.busy_s == rec.delivered_at - 15
    assert rig.log.open_orders == 0


def test_a_courier_that_says_no_declines_after_its_answer_time_and_stays_idle():
    rig = _Rig(answer=(False, 12.0))
    rig.order("o1")
    rig.env.run(until=1)
    rig.offer("o1")
    rig.env.run(until=12.5)
    assert ("decline", "c1", "of-o1") not in rig.actions()
    rig.env.run(until=14)
    assert rig.actions()[-1] == ("decline", "c1", "of-o1")
    assert rig.run.phase is Phase.IDLE and rig.run.busy_s == 0


def test_a_cancellation_interrupts_the_travelling_courier_which_drops_the_order():
    rig = _Rig()
    rig.order("o1")
    rig.env.run(until=1)
    rig.offer("o1")
    rig.env.run(until=100)  # accepted at 11; the ride to the shop takes ~320 s
    assert rig.run.phase is Phase.TO_PICKUP
    rig.platform.cancelled.add("o1")
    rig.proc.interrupt(Cancelled("o1"))
    rig.env.run(until=101)
    assert rig.run.phase is Phase.IDLE and rig.run.orders == []
    assert HOME.lat < rig.run.pos.lat < SHOP.lat  # stopped on the way
    rig.env.run(until=2_000)
    assert not any(a[0] == "arrive" for a in rig.actions())  # never went to the shop
    assert rig.log.refusals == {}  # dropped on being told, not by a refusal at the counter
    assert rig.run.busy_s == 100 - 11


def test_a_cancellation_while_waiting_for_food_keeps_the_other_order():
    rig = _Rig()
    rig.order("o1", ready_at=None)  # the kitchen never finishes o1
    o2 = rig.order("o2", ready_at=400.0)
    rig.env.run(until=1)
    rig.offer("o1", "o2")
    rig.env.run(until=450)
    assert rig.run.phase is Phase.AT_PICKUP and rig.run.orders == ["o1", "o2"]
    rig.proc.interrupt(Cancelled("o1"))
    rig.env.run(until=3_000)
    assert rig.run.orders == [] and o2.delivered_at is not None
    assert [a for a in rig.actions() if a[0] == "deliver"] == [("deliver", "c1", "o2")]


def test_a_shift_that_ends_while_deciding_sends_the_courier_home_without_an_answer():
    rig = _Rig(answer=(True, 30.0), shift_end=1_000)
    rig.order("o1")
    rig.env.run(until=980)
    rig.offer("o1")
    rig.env.run(until=1_100)
    assert rig.actions() == [("start_shift", "c1"), ("end_shift", "c1")]
    assert rig.run.phase is Phase.OFF and rig.run.shift_s == 1_000
    assert not rig.proc.is_alive


def test_a_shift_that_ends_during_a_trip_ends_after_the_last_drop():
    rig = _Rig(shift_end=700)
    rig.order("o1")
    rig.env.run(until=1)
    rig.offer("o1")
    rig.env.run(until=5_000)
    assert [a[0] for a in rig.actions()][-2:] == ["deliver", "end_shift"]
    assert rig.run.phase is Phase.OFF and rig.run.shift_s > 700


# -- the world on the fake platform -----------------------------------------------------------
def _city(n_couriers: int = 3) -> City:
    spec = get_scenario("tiny").cities[0]
    region = SimRegion(id="reg_pa", spec=spec)
    merchants = tuple(SimMerchant(id=f"m{i}", region_id=region.id,
                                  location=Point(lat=spec.centre.lat + 0.004 * i,
                                                 lng=spec.centre.lng), prep_time_s=600,
                                  item_ids=("i1", "i2")) for i in range(4))
    start = get_scenario("tiny").day_start + 12 * 3600
    couriers = tuple(SimCourierSpec(id=f"c{i}", region_id=region.id, vehicle=Vehicle.SCOOTER,
                                    speed_mps=7.0, home=spec.centre, shift_start=start - 60,
                                    shift_end=start + 4 * 3600) for i in range(n_couriers))
    return City(regions=(region,), merchants=merchants,
                consumers={region.id: ("k1", "k2", "k3")}, couriers=couriers)


def _world(seed: int, *, knows_offers: bool = True, hours: float = 1.5,
           cfg: WorldConfig | None = None) -> tuple[World, FakePlatform]:
    clock = [0.0]

    class Driver:
        def now(self) -> float:
            return clock[0]

        def advance_to(self, t: float) -> None:
            clock[0] = max(clock[0], t)

    platform = FakePlatform(lambda: clock[0], knows_offers=knows_offers)
    scenario = replace(get_scenario("tiny"), base_per_h=40.0)
    clock[0] = scenario.day_start + scenario.start_h * 3600
    world = World(city=_city(), scenario=scenario, actions=platform, driver=Driver(), seed=seed,
                  hours=hours, config=cfg)
    return world, platform


def test_same_seed_same_run_call_for_call_and_another_seed_differs():
    a, pa = _world(5)
    b, pb = _world(5)
    c, pc = _world(6)
    ka, kb, kc = (compute_kpis(w.run()) for w in (a, b, c))
    assert ka["orders_delivered"] > 5
    assert pa.calls == pb.calls and ka == kb
    assert pc.calls != pa.calls


def test_at_a_shared_instant_pings_come_before_the_dispatch_tick():
    world, platform = _world(3, hours=0.1)
    world.run()
    t1 = world.log.start + 60  # the shift pings and the tick both fall here
    at = [c[1] for c in platform.calls if c[0] == round(t1, 6)]
    assert at[:4] == ["ping", "ping", "ping", "dispatch"], at


def test_only_couriers_offered_something_are_asked_unless_the_actions_cannot_say():
    world, platform = _world(5)
    world.run()
    offered = [c for call in platform.calls if call[1] == "dispatch" for c in call[2]]
    assert sorted(set(platform.polled)) == sorted(set(offered))
    assert len(platform.polled) <= len(offered) + sum(1 for c in platform.calls
                                                      if c[1] in ("accept", "decline"))
    blind, blind_platform = _world(5, knows_offers=False)
    blind.run()
    assert len(blind_platform.polled) > len(platform.polled)  # every idle courier, every tick
    assert blind_platform.calls == platform.calls  # ...and the same run


def test_an_impatient_consumer_cancels_and_the_courier_holding_the_order_drops_it():
    world, platform = _world(5, cfg=WorldConfig(patience_s=-2_300.0))  # cancel ~100 s in
    log = world.run()
    cancelled = [o for o in log.orders.values() if o.cancelled_at is not None]
    assert cancelled and log.open_orders == sum(1 for o in log.orders.values() if o.open)
    assert sum(1 for o in cancelled if o.courier_id is not None) >= 5  # held when cancelled
    for o in cancelled:
        assert o.delivered_at is None and o.picked_up_at is None
        assert not any(c[1] in ("pick_up", "deliver") and c[-1] == o.id for c in platform.calls)
    assert all(not r.orders or r.phase.holding for r in log.couriers.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-0.08, 0.08), st.floats(-0.08, 0.08)), min_size=64,
                max_size=120),
       st.tuples(st.floats(-0.09, 0.09), st.floats(-0.09, 0.09)))
def test_the_merchant_grid_finds_exactly_the_merchants_in_reach_in_region_order(spots, drop):
    radius = 4_000.0
    merchants = [SimMerchant(id=f"m{i}", region_id="r",
                             location=Point(lat=37.4 + a, lng=-122.1 + b), prep_time_s=600,
                             item_ids=("i",)) for i, (a, b) in enumerate(spots)]
    p = Point(lat=37.4 + drop[0], lng=-122.1 + drop[1])
    grid = _MerchantGrid(merchants, radius)
    via_grid = [i for i in grid.around(p) if haversine_m(merchants[i].location, p) <= radius]
    scan = [i for i, m in enumerate(merchants) if haversine_m(m.location, p) <= radius]
    assert via_grid == scan


def test_progress_is_told_every_few_simulated_seconds_not_every_step():
    world, _ = _world(5, hours=0.5)
    heard: list[float] = []
    world.run(progress=lambda t, log: heard.append(t), progress_every_s=60.0)
    assert 10 <= len(heard) <= 31
    assert all(b - a >= 60.0 for a, b in zip(heard, heard[1:], strict=False))


def test_a_scenario_day_starts_at_local_midnight_of_its_first_city():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    lunch = get_scenario("lunch")  # Palo Alto, America/Los_Angeles
    assert lunch.day_start == 1_767_254_400.0  # 2026-01-01T08:00:00Z
    noon = datetime.fromtimestamp(lunch.day_start + 12 * 3600, ZoneInfo("America/Los_Angeles"))
    assert (noon.hour, noon.minute, noon.weekday()) == (12, 0, 3)
    assert lunch.utc_offset_min == -480
    nyc_first = replace(lunch, cities=(get_scenario("valentines").cities[-1],))
    assert nyc_first.day_start == lunch.day_start - 3 * 3600
