"""Reassignment (``core.dispatch.reassign``): rules with literal snapshots, invariants with
hypothesis."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import MERCHANTS, TRAVEL

from lastmile.core.dispatch import (
    Assignment,
    CommittedAssignment,
    CourierState,
    DispatchPlan,
    DispatchPolicy,
    OpenOrder,
    Snapshot,
    plan_round,
)
from lastmile.core.dispatch.model import Preposition, Reassignment
from lastmile.core.dispatch.reassign import Move, plan_moves
from lastmile.core.errors import InvalidInput

MIN = 60.0
NOW = 100 * MIN
ON = DispatchPolicy(allow_reassignment=True, reassign_min_gain_s=5 * MIN, max_moves_per_order=1)


def _held(order_id: str = "h1", *, merchant_xy=(0.0, 0.0), ready_s=NOW, moves=0,
          tenant="lastmile:default") -> OpenOrder:
    return OpenOrder(order_id=order_id, merchant_id="m1", placed_s=NOW - 20 * MIN,
                     ready_s=ready_s, pickup_x_m=merchant_xy[0], pickup_y_m=merchant_xy[1],
                     dropoff_x_m=1500.0, dropoff_y_m=0.0, moves=moves, tenant=tenant)


def _courier(cid: str, x: float, *, free_s=NOW, tenant="lastmile:default",
             shift_end_s=NOW + 240 * MIN, at_merchant_id=None) -> CourierState:
    return CourierState(courier_id=cid, x_m=x, y_m=0.0, free_s=free_s, shift_start_s=0.0,
                        shift_end_s=shift_end_s, tenant=tenant, at_merchant_id=at_merchant_id)


def _snapshot(*, a_far_m: float = 9600.0, b_at_m: float = 320.0, orders=None,
              arrival_s=None, b_free_s=NOW, b_tenant="lastmile:default", **a) -> Snapshot:
    """Courier A holds a bundle at merchant m1 (0, 0) from ``a_far_m`` metres away (30
    minutes at 320 m/min); courier B is idle ``b_at_m`` metres from it."""
    orders = orders or (_held(),)
    a_travel = TRAVEL.seconds_between(a_far_m, 0, 0, 0)
    arrival = NOW + a_travel if arrival_s is None else arrival_s
    committed = CommittedAssignment(courier_id="A", merchant_id="m1", orders=orders,
                                    arrival_s=arrival, pickup_s=max(arrival + 2 * MIN, NOW))
    couriers = (_courier("A", 0.0, free_s=arrival + 30 * MIN, **a),
                _courier("B", b_at_m, free_s=b_free_s, tenant=b_tenant))
    return Snapshot(now_s=NOW, orders=(), couriers=couriers, travel=TRAVEL,
                    pickup_service_s=4 * MIN, dropoff_service_s=4 * MIN,
                    committed=(committed,))


def test_a_clearly_better_courier_takes_the_whole_bundle():
    snap = _snapshot(orders=(_held("h1"), _held("h2")))
    (move,) = plan_moves(snap, ON)
    assert (move.from_courier_id, move.to_courier_id) == ("A", "B")
    assert move.order_ids == ("h1", "h2") and move.merchant_id == "m1"
    # B: 1 minute away, picks up after half the service; A: 30 minutes away.
    assert move.pickup_s == NOW + 1 * MIN + 2 * MIN
    assert move.gain_s == pytest.approx(29 * MIN)


def test_a_marginal_gain_moves_nothing():
    # A is 6 minutes away, B 2 minutes: 4 minutes better, under the 5-minute threshold.
    assert plan_moves(_snapshot(a_far_m=6 * 320.0, b_at_m=2 * 320.0), ON) == ()
    # The same pair moves once the threshold is lower than the gain.
    looser = replace(ON, reassign_min_gain_s=3 * MIN)
    assert [m.to_courier_id for m in plan_moves(_snapshot(a_far_m=6 * 320.0,
                                                          b_at_m=2 * 320.0), looser)] == ["B"]


def test_off_by_default_as_mdrp_requires():
    from lastmile.sim.mdrp.runner import POLICIES, policy_named

    assert DispatchPolicy().allow_reassignment is False
    assert plan_moves(_snapshot(), DispatchPolicy()) == ()
    assert not any(policy_named(name).allow_reassignment for name in POLICIES)


def test_food_not_ready_earlier_gains_nothing():
    # Ready in 40 minutes: both couriers would wait for the food; no pickup is earlier.
    assert plan_moves(_snapshot(orders=(_held(ready_s=NOW + 40 * MIN),)), ON) == ()


def test_a_courier_at_the_merchant_keeps_its_bundle():
    assert plan_moves(_snapshot(arrival_s=NOW - MIN), ON) == ()
    assert plan_moves(_snapshot(at_merchant_id="m1"), ON) == ()


def test_an_order_moved_max_times_stays():
    snap = _snapshot(orders=(_held("h1"), _held("h2", moves=1)))
    assert plan_moves(snap, ON) == ()
    assert len(plan_moves(snap, replace(ON, max_moves_per_order=2))) == 1
    assert plan_moves(snap, replace(ON, max_moves_per_order=0)) == ()


def test_never_pairs_couriers_of_different_tenants():
    snap = _snapshot(b_tenant="doortest:a")
    assert snap.couriers[1].tenant != snap.committed[0].orders[0].tenant
    assert plan_moves(snap, ON) == ()


def test_a_courier_used_by_the_round_is_not_taken():
    snap = _snapshot()
    for plan in (
        DispatchPlan(assignments=(Assignment(courier_id="B", merchant_id="m2", order_ids=("x",),
                                             arrival_s=NOW, pickup_s=NOW),)),
        DispatchPlan(reassignments=(Reassignment(courier_id="B", merchant_id="m2",
                                                 order_ids=("x",), pickup_s=NOW),)),
        DispatchPlan(prepositions=(Preposition(courier_id="B", merchant_id="m2",
                                               arrival_s=NOW),)),
    ):
        assert plan_moves(snap, ON, plan) == ()


def test_a_courier_free_soon_takes_it_only_at_a_better_time():
    assert [m.to_courier_id for m in plan_moves(_snapshot(b_free_s=NOW + 10 * MIN), ON)] == ["B"]
    assert plan_moves(_snapshot(b_free_s=NOW + 26 * MIN), ON) == ()


def test_a_courier_whose_shift_ends_before_the_pickup_is_not_taken():
    snap = _snapshot()
    b = replace(snap.couriers[1], shift_end_s=NOW + 2 * MIN)
    assert plan_moves(replace(snap, couriers=(snap.couriers[0], b)), ON) == ()


def test_the_best_taker_wins_and_each_courier_is_used_once():
    snap = _snapshot()
    near = _courier("C", 0.0)  # at the merchant: no travel, one minute better than B
    two = replace(snap, couriers=(*snap.couriers, near))
    (move,) = plan_moves(two, ON)
    assert move.to_courier_id == "C"


@pytest.mark.parametrize("field,value", [("reassign_min_gain_s", -1.0),
                                         ("max_moves_per_order", -1),
                                         ("max_moves_per_order", 99)])
def test_policy_knobs_are_validated(field, value):
    with pytest.raises(InvalidInput) as err:
        DispatchPolicy(**{field: value})
    assert err.value.field == field


# --- invariants ----------------------------------------------------------------------------

TENANTS = ("lastmile:default", "doortest:a")


@st.composite
def held_snapshots(draw: st.DrawFn) -> Snapshot:
    """2-10 couriers of two tenants; some hold a bundle (travelling, or at the merchant),
    some of whose orders have moved already; the rest idle or busy."""
    now = NOW
    n = draw(st.integers(2, 10))
    couriers, committed = [], []
    for j in range(n):
        tenant = draw(st.sampled_from(TENANTS))
        x = draw(st.floats(0, 8000)), draw(st.floats(0, 4000))
        free = now + draw(st.integers(-10, 40)) * MIN
        end = now + draw(st.integers(1, 240)) * MIN
        at_merchant = None
        if draw(st.booleans()):
            m = draw(st.sampled_from(sorted(MERCHANTS)))
            mx, my = MERCHANTS[m]
            arrival = now + draw(st.integers(-5, 40)) * MIN
            ready = now + draw(st.integers(-10, 30)) * MIN
            orders = tuple(
                OpenOrder(order_id=f"o{j}_{k}", merchant_id=m, placed_s=now - 30 * MIN,
                          ready_s=ready, pickup_x_m=mx, pickup_y_m=my, dropoff_x_m=mx + 900,
                          dropoff_y_m=my, moves=draw(st.integers(0, 2)), tenant=tenant)
                for k in range(draw(st.integers(1, 3))))
            committed.append(CommittedAssignment(
                courier_id=f"c{j}", merchant_id=m, orders=orders, arrival_s=arrival,
                pickup_s=max(arrival + 2 * MIN, ready)))
            at_merchant = m if arrival <= now and draw(st.booleans()) else None
            free = max(free, arrival + 20 * MIN)
        couriers.append(CourierState(courier_id=f"c{j}", x_m=x[0], y_m=x[1], free_s=free,
                                     shift_start_s=now - 60 * MIN, shift_end_s=end,
                                     at_merchant_id=at_merchant, tenant=tenant))
    return Snapshot(now_s=now, orders=(), couriers=tuple(couriers), travel=TRAVEL,
                    pickup_service_s=4 * MIN, dropoff_service_s=4 * MIN,
                    committed=tuple(committed))


policies = st.builds(
    lambda gain, moves: DispatchPolicy(allow_reassignment=True, reassign_min_gain_s=gain * MIN,
                                       max_moves_per_order=moves),
    st.integers(0, 10), st.integers(0, 3))


@settings(max_examples=150, deadline=None)
@given(snap=held_snapshots(), policy=policies, used=st.sets(st.integers(0, 9), max_size=3))
def test_moves_keep_every_rule(snap, policy, used):
    plan = DispatchPlan(prepositions=tuple(
        Preposition(courier_id=f"c{j}", merchant_id="r0", arrival_s=NOW) for j in sorted(used)))
    moves = plan_moves(snap, policy, plan)
    couriers = {c.courier_id: c for c in snap.couriers}
    held = {a.courier_id: a for a in snap.committed}
    involved = [m.from_courier_id for m in moves] + [m.to_courier_id for m in moves]
    assert len(involved) == len(set(involved)), "a courier given or taken two things"
    for m in moves:
        a, b = held[m.from_courier_id], couriers[m.to_courier_id]
        assert m.order_ids == a.order_ids, "only whole bundles move"
        assert m.to_courier_id not in held, "the taker already holds a bundle"
        assert m.to_courier_id not in {p.courier_id for p in plan.prepositions}
        assert m.from_courier_id not in {p.courier_id for p in plan.prepositions}
        assert a.arrival_s > snap.now_s and couriers[a.courier_id].at_merchant_id is None
        assert all(o.moves < policy.max_moves_per_order for o in a.orders)
        assert {o.tenant for o in a.orders} == {b.tenant} == {couriers[a.courier_id].tenant}
        assert m.gain_s > policy.reassign_min_gain_s
        assert m.pickup_s >= max(o.ready_s for o in a.orders)
        assert m.pickup_s <= b.shift_end_s and b.shift_end_s > snap.now_s


@settings(max_examples=100, deadline=None)
@given(snap=held_snapshots())
def test_nothing_moves_with_reassignment_off(snap):
    assert plan_moves(snap, DispatchPolicy()) == ()


@settings(max_examples=60, deadline=None)
@given(snap=held_snapshots(), policy=policies)
def test_composes_with_plan_round_without_sharing_a_courier(snap, policy):
    plan = plan_round(snap, policy)
    moves = plan_moves(snap, policy, plan)
    instructed = ({a.courier_id for a in plan.assignments}
                  | {r.courier_id for r in plan.reassignments}
                  | {p.courier_id for p in plan.prepositions})
    assert not instructed & {m.to_courier_id for m in moves}
    assert all(isinstance(m, Move) for m in moves)


def test_the_second_wall_refuses_a_cross_tenant_move():
    from lastmile.core.dispatch.reassign import _check_tenants
    from lastmile.core.errors import Forbidden

    snap = _snapshot(b_tenant="doortest:a")
    forged = Move(from_courier_id="A", to_courier_id="B", merchant_id="m1", order_ids=("h1",),
                  arrival_s=NOW, pickup_s=NOW, previous_pickup_s=NOW + 600)
    with pytest.raises(Forbidden) as refused:
        _check_tenants(snap, [forged])
    assert refused.value.code == "cross_tenant"
    _check_tenants(_snapshot(), [forged])  # one tenant: fine
