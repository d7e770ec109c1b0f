"""The simulated days' placement-time features: couriers near the merchant and open work,
read from the world just before the order is placed."""

from __future__ import annotations

import math

import pytest

from lastmile.core.geo import Point, haversine_m
from lastmile.core.model import Vehicle
from lastmile.core.pricing import ROAD_FACTOR, PricingPolicy
from lastmile.sim.city import SimCourierSpec
from lastmile.sim.eta_days import _known_at
from lastmile.sim.model import CourierRun, OrderRecord, Phase, WorldLog

MERCHANT = Point(lat=0.0, lng=0.0)
NOW = 1_000.0


def a_courier(log: WorldLog, cid: str, where: Point, phase: Phase) -> CourierRun:
    run = CourierRun(spec=SimCourierSpec(id=cid, region_id="r1", vehicle=Vehicle.BICYCLE,
                                         speed_mps=4.5, home=where, shift_start=0.0,
                                         shift_end=9_000.0), pos=where)
    log.enrol(run)
    log.move(run, phase, 0.0)
    return run


def an_order(log: WorldLog, oid: str, merchant_id: str, **kw: object) -> None:
    log.orders[oid] = OrderRecord(id=oid, region_id="r1", merchant_id=merchant_id,
                                  consumer_id="c", dropoff=Point(lat=0.02, lng=0.0),
                                  placed_at=0.0, eta_expected_at=0.0, eta_high_at=0.0,
                                  fees_minor=0, pickup=MERCHANT, **kw)  # type: ignore[arg-type]


def road_s(a: Point) -> float:
    return haversine_m(a, MERCHANT) * ROAD_FACTOR / PricingPolicy().courier_speed_mps


def test_reach_counts_idle_couriers_and_those_on_their_last_drop_off():
    log = WorldLog(start=0.0, end=9_000.0)
    idle_at = Point(lat=0.05, lng=0.0)  # about 5.6 km north
    a_courier(log, "idle", idle_at, Phase.IDLE)
    door = Point(lat=0.0, lng=0.018)
    last = a_courier(log, "last", Point(lat=0.0, lng=0.01), Phase.TO_DROPOFF)
    last.orders, last.leg = ["o9"], (Point(lat=0.0, lng=0.01), door, 900.0, NOW + 100.0)
    a_courier(log, "going", Point(lat=0.0, lng=0.03), Phase.TO_PICKUP)  # not free soon
    a_courier(log, "off", Point(lat=0.0, lng=0.001), Phase.OFF)
    reach, reach_3, idle, _, _ = _known_at(log, MERCHANT, "m1", NOW)
    # the rest of the last leg, the door handover, then back from the door: sooner than idle
    assert reach == pytest.approx(100.0 + PricingPolicy().service_s / 2 + road_s(door))
    assert idle == pytest.approx(road_s(idle_at)) and idle > reach
    assert math.isnan(reach_3)  # two couriers can come, not three
    near = Point(lat=0.0, lng=0.002)
    a_courier(log, "idle2", near, Phase.IDLE)
    reach, reach_3, idle, _, _ = _known_at(log, MERCHANT, "m1", NOW)
    assert reach == idle == pytest.approx(road_s(near))
    assert reach_3 == pytest.approx(road_s(idle_at))


def test_open_work_counts_unheld_orders_and_the_merchants_orders_not_picked_up():
    log = WorldLog(start=0.0, end=9_000.0)
    an_order(log, "waiting", "m1")
    an_order(log, "held", "m1", courier_id="k1")
    an_order(log, "elsewhere", "m2")
    an_order(log, "gone", "m1", courier_id="k2", picked_up_at=500.0)
    an_order(log, "cancelled", "m1", cancelled_at=400.0)
    *_, waiting, kitchen = _known_at(log, MERCHANT, "m1", NOW)
    assert (waiting, kitchen) == (2.0, 2.0)  # waiting + elsewhere; waiting + held
    reach, _, idle, _, _ = _known_at(log, MERCHANT, "m1", NOW)
    assert math.isnan(reach) and math.isnan(idle)  # no courier at all
