"""Stacked orders across two merchants (core.dispatch.stacking): the rule, unit and
property tests. Invariants: every stacked route picks each order up no earlier than it is
ready and before its drop-off, keeps every promised window and the food-wait bound at the
committed pickup time, stacks only orders of one tenant, and an MDRP policy never stacks."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lastmile.core.dispatch import (
    CourierState,
    DispatchPolicy,
    OpenOrder,
    Snapshot,
    TravelModel,
    plan_round,
)
from lastmile.core.dispatch.bundling import generate_bundles
from lastmile.core.dispatch.costing import pair_costs
from lastmile.core.dispatch.stacking import plan_stack, stack_bundles
from lastmile.core.errors import InvalidInput
from lastmile.core.tenant_config import parse_tenant_config
from lastmile.sim.mdrp.runner import POLICIES, policy_named

TRAVEL = TravelModel(metres_per_step=4.5 / 1.3, step_s=1.0)
SVC = 120.0
ON = DispatchPolicy(allow_stacking=True)


def _order(oid, merchant, mx, dx, *, ready=600.0, promised=None, tenant="lastmile:default",
           dy=0.0):
    return OpenOrder(order_id=oid, merchant_id=merchant, placed_s=0.0, ready_s=ready,
                     pickup_x_m=mx, pickup_y_m=0.0, dropoff_x_m=dx, dropoff_y_m=dy,
                     promised_s=promised, tenant=tenant)


def _plan(a, b, policy=ON, now=-math.inf):
    return plan_stack(a, b, travel=TRAVEL, pickup_service_s=SVC, dropoff_service_s=SVC,
                      policy=policy, now_s=now)


def test_two_nearby_merchants_to_two_nearby_doors_make_a_stack():
    found = _plan(_order("a", "m1", 0, 2000), _order("b", "m2", 200, 2300, ready=620.0))
    assert found is not None and found.saving_s > 0
    b = found.bundle
    assert [s.kind for s in b.stops] == ["pickup", "pickup", "dropoff", "dropoff"]
    assert b.merchant_ids == ("m1", "m2")
    assert (b.merchant_id, b.x_m) == ("m1", 0)  # the first pickup, as costing reads it
    assert b.ready_s == 600.0 and b.stops[1].offset_s == SVC + math.ceil(200 / TRAVEL.metres_per_step)


def test_the_same_merchant_other_tenants_or_far_merchants_never_stack():
    a = _order("a", "m1", 0, 2000)
    assert _plan(a, _order("b", "m1", 0, 2100)) is None
    assert _plan(a, _order("b", "m2", 200, 2100, tenant="doortest:x")) is None
    assert _plan(a, _order("b", "m2", ON.stack_radius_m + 1, 2100)) is None
    assert _plan(a, _order("b", "m2", 200, 2000, dy=ON.stack_dropoff_radius_m + 10)) is None


def test_a_promised_window_the_stack_would_break_refuses_it():
    a = _order("a", "m1", 0, 2000)
    b = _order("b", "m2", 200, 2300, ready=620.0)
    ok = _plan(a, b)
    assert ok is not None
    assert _plan(a, replace(b, promised_s=900.0)) is None  # b's door is > 5 min away
    deliver_b = ok.bundle.ready_s + next(s.offset_s for s in ok.bundle.stops
                                         if s.kind == "dropoff" and s.order_ids == ("b",))
    tight = _plan(a, replace(b, promised_s=deliver_b + 30))
    assert tight is not None and tight.bundle.latest_pickup_s <= tight.bundle.ready_s + 30


def test_food_waiting_too_long_refuses_the_stack():
    a = _order("a", "m1", 0, 2000, ready=0.0)
    b = _order("b", "m2", 200, 2300, ready=1200.0)  # 20 min later: a's food would wait
    assert _plan(a, b) is None
    assert _plan(a, b, replace(ON, stack_max_food_wait_s=30 * 60.0,
                               stack_max_extra_delay_s=40 * 60.0)) is not None


def test_a_stack_that_saves_no_courier_time_is_not_made():
    # Doors in opposite directions: two trips cost less than the stack's zigzag.
    a = _order("a", "m1", 0, 2500)
    b = _order("b", "m2", 100, -2400)
    assert _plan(a, b, replace(ON, stack_dropoff_radius_m=5000.0)) is None


def test_costing_marks_a_courier_arriving_after_the_latest_pickup_infeasible():
    a = _order("a", "m1", 0, 2000, promised=2000.0)
    b = _order("b", "m2", 200, 2300, ready=620.0, promised=2000.0)
    stack = _plan(a, b).bundle
    near = CourierState(courier_id="near", x_m=0, y_m=10, free_s=0, shift_start_s=0,
                        shift_end_s=1e6)
    far = replace(near, courier_id="far", x_m=-8000)
    times = pair_costs([near, far], [stack], now_s=500.0, travel=TRAVEL, pickup_service_s=SVC,
                       idle_weight=0.1, late_weight=1.5)
    assert times.pickup_s[1, 0] > stack.latest_pickup_s
    assert list(times.feasible[:, 0]) == [True, False]


def test_stacking_off_leaves_the_bundles_alone():
    orders = [_order("a", "m1", 0, 2000), _order("b", "m2", 200, 2300)]
    bundles = generate_bundles(orders, travel=TRAVEL, pickup_service_s=SVC,
                               dropoff_service_s=SVC, size_cap=1, max_ready_gap_s=600,
                               max_extra_delay_s=900)
    assert stack_bundles(bundles, orders, travel=TRAVEL, pickup_service_s=SVC,
                         dropoff_service_s=SVC, policy=DispatchPolicy()) == bundles


def test_every_mdrp_policy_keeps_stacking_off():
    assert DispatchPolicy().allow_stacking is False
    assert all(not policy_named(name).allow_stacking for name in POLICIES)


def test_stack_knobs_are_tenant_configurable_and_validated():
    config = parse_tenant_config({"dispatch": {"allow_stacking": True, "stack_radius_m": 500}})
    policy = config.dispatch_policy(DispatchPolicy())
    assert policy.allow_stacking and policy.stack_radius_m == 500.0
    with pytest.raises(InvalidInput) as err:
        parse_tenant_config({"dispatch": {"stack_radius_m": 50_000}})
    assert err.value.field == "config.dispatch.stack_radius_m"
    with pytest.raises(InvalidInput) as err:
        parse_tenant_config({"dispatch": {"stack_max_food_wait_s": -1}})
    assert err.value.field == "config.dispatch.stack_max_food_wait_s"


# -- properties --------------------------------------------------------------------------

TENANTS = ("lastmile:default", "doortest:a")


@st.composite
def city(draw: st.DrawFn) -> Snapshot:
    """Streets of 2-3 merchants (0-700 m apart, 3 km between streets), doors 0.8-2 km east of
    their merchant, food ready around now, promised windows (or none), couriers near the
    streets; a second tenant sometimes shares a street."""
    now = 3600.0
    merchants = []
    for street in range(draw(st.integers(1, 3))):
        for k in range(draw(st.integers(2, 3))):
            tenant = TENANTS[1] if draw(st.integers(0, 4)) == 0 else TENANTS[0]
            merchants.append((f"m{street}{k}", street * 3000.0 + draw(st.floats(0, 700)),
                              draw(st.floats(0, 300)), tenant))
    orders = []
    for i in range(draw(st.integers(2, 12))):
        mid, mx, my, tenant = draw(st.sampled_from(merchants))
        placed = now - draw(st.integers(0, 25)) * 60.0
        ready = max(placed, now + draw(st.integers(-6, 3)) * 60.0)
        promised = draw(st.one_of(st.none(), st.floats(now + 900, now + 3600)))
        orders.append(OpenOrder(
            order_id=f"o{i}", merchant_id=mid, placed_s=placed, ready_s=ready,
            pickup_x_m=mx, pickup_y_m=my, dropoff_x_m=mx + draw(st.floats(800, 2000)),
            dropoff_y_m=my + draw(st.floats(-600, 600)), promised_s=promised,
            tenant=tenant))
    couriers = tuple(
        CourierState(courier_id=f"c{j}", x_m=draw(st.floats(-500, 6500)),
                     y_m=draw(st.floats(-500, 500)),
                     free_s=now - draw(st.integers(0, 10)) * 60.0, shift_start_s=0.0,
                     shift_end_s=now + 4 * 3600,
                     tenant=TENANTS[1] if draw(st.integers(0, 4)) == 0 else TENANTS[0])
        for j in range(draw(st.integers(1, 10))))
    return Snapshot(now_s=now, orders=tuple(orders), couriers=couriers, travel=TRAVEL,
                    pickup_service_s=SVC, dropoff_service_s=SVC, tenant=TENANTS[0])


POLICY = replace(ON, stack_radius_m=800.0, allow_prepositioning=False)


@settings(max_examples=300, deadline=None)
@given(city())
def test_every_stacked_route_keeps_ready_times_windows_and_order_of_stops(snap):
    plan = plan_round(snap, POLICY)
    orders = {o.order_id: o for o in snap.orders}
    couriers = {c.courier_id: c for c in snap.couriers}
    seen: set[str] = set()
    event(f"stacked assignments: {sum(1 for a in plan.assignments if a.stops)}")
    for a in plan.assignments:
        assert not seen & set(a.order_ids)
        seen.update(a.order_ids)
        if not a.stops:
            assert len({orders[i].merchant_id for i in a.order_ids}) == 1
            continue
        assert len(a.merchant_ids) == 2 and a.merchant_ids[0] == a.merchant_id
        assert a.stops[0].offset_s == 0.0
        tenants = {orders[i].tenant for i in a.order_ids} | {couriers[a.courier_id].tenant}
        assert len(tenants) == 1  # never across tenants
        picked_at: dict[str, float] = {}
        last = -math.inf
        for s in a.stops:
            at = a.pickup_s + s.offset_s
            assert at >= last  # stops in time order
            last = at
            for oid in s.order_ids:
                o = orders[oid]
                if s.kind == "pickup":
                    assert o.merchant_id == s.merchant_id
                    assert at >= o.ready_s - 1e-6  # never before the food is ready
                    assert at - o.ready_s <= POLICY.stack_max_food_wait_s + 1e-6
                    picked_at[oid] = at
                else:
                    assert oid in picked_at  # every pickup before its drop-off
                    if o.promised_s is not None:
                        assert at <= o.promised_s + 1e-6  # the promised window holds
        assert set(picked_at) == set(a.order_ids)


@settings(max_examples=60, deadline=None)
@given(city())
def test_without_stacking_no_plan_has_stops(snap):
    plan = plan_round(snap, replace(POLICY, allow_stacking=False))
    assert all(not a.stops for a in plan.assignments)
    for name in POLICIES:
        assert all(not a.stops for a in plan_round(snap, policy_named(name)).assignments)


@settings(max_examples=250, deadline=None)
@given(city())
def test_stacking_keeps_every_order_in_exactly_one_bundle(snap):
    orders = list(snap.orders)
    bundles = generate_bundles(orders, travel=TRAVEL, pickup_service_s=SVC,
                               dropoff_service_s=SVC, size_cap=2, max_ready_gap_s=600,
                               max_extra_delay_s=900)
    stacked = stack_bundles(bundles, orders, travel=TRAVEL, pickup_service_s=SVC,
                            dropoff_service_s=SVC, policy=POLICY, now_s=snap.now_s)
    ids = [i for b in stacked for i in b.order_ids]
    assert sorted(ids) == sorted(o.order_id for o in orders)
    by_id = {o.order_id: o for o in orders}
    event(f"stacks: {sum(1 for b in stacked if b.stops)}")
    for b in stacked:
        if b.stops:
            assert len({by_id[i].tenant for i in b.order_ids}) == 1
            assert b.ready_s >= snap.now_s and b.ready_s <= b.latest_pickup_s
            # Any first pickup the costing lets through, from the earliest to the latest,
            # keeps ready times, the food-wait bound and every promised window.
            for start in {b.ready_s, min(b.latest_pickup_s, b.ready_s + 3600)}:
                _check_route(start, b.stops, by_id)


def _check_route(start, stops, orders):
    picked: set[str] = set()
    for s in stops:
        at = start + s.offset_s
        (oid,) = s.order_ids
        o = orders[oid]
        if s.kind == "pickup":
            assert o.merchant_id == s.merchant_id and at >= o.ready_s - 1e-6
            assert at - o.ready_s <= POLICY.stack_max_food_wait_s + 1e-6
            picked.add(oid)
        else:
            assert oid in picked
            assert o.promised_s is None or at <= o.promised_s + 1e-6
