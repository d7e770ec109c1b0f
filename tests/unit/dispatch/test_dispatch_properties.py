"""Invariants of a dispatch round over random snapshots (hypothesis)."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from lastmile.core.dispatch import (
    CommittedAssignment,
    CourierState,
    DispatchPolicy,
    Merchant,
    OpenOrder,
    PolicyKind,
    Snapshot,
    TravelModel,
    plan_round,
)

MIN = 60.0
MERCHANTS = {f"r{i}": (i * 1500.0, (i % 2) * 2000.0) for i in range(4)}
coord = st.floats(min_value=0, max_value=8000, allow_nan=False)


@st.composite
def snapshots(draw):
    now = draw(st.integers(0, 60)) * MIN
    orders = []
    for i in range(draw(st.integers(0, 12))):
        m = draw(st.sampled_from(sorted(MERCHANTS)))
        placed = draw(st.integers(0, int(now / MIN))) * MIN
        orders.append(
            OpenOrder(
                order_id=f"o{i}",
                merchant_id=m,
                placed_s=placed,
                ready_s=placed + draw(st.integers(0, 40)) * MIN,
                pickup_x_m=MERCHANTS[m][0],
                pickup_y_m=MERCHANTS[m][1],
                dropoff_x_m=draw(coord),
                dropoff_y_m=draw(coord),
            )
        )
    couriers = []
    for j in range(draw(st.integers(0, 8))):
        start = draw(st.integers(0, 90)) * MIN
        couriers.append(
            CourierState(
                courier_id=f"c{j}",
                x_m=draw(coord),
                y_m=draw(coord),
                free_s=draw(st.integers(0, 90)) * MIN,
                shift_start_s=start,
                shift_end_s=start + draw(st.integers(1, 240)) * MIN,
            )
        )
    merchants = tuple(
        Merchant(merchant_id=k, x_m=x, y_m=y, demand_weight=draw(st.integers(0, 3)))
        for k, (x, y) in sorted(MERCHANTS.items())
    )
    return Snapshot(
        now_s=now,
        orders=tuple(orders),
        couriers=tuple(couriers),
        travel=TravelModel(metres_per_step=320.0, step_s=60.0),
        pickup_service_s=4 * MIN,
        dropoff_service_s=4 * MIN,
        merchants=merchants,
    )


policies = st.sampled_from(
    [
        DispatchPolicy(),
        DispatchPolicy(kind=PolicyKind.GREEDY),
        DispatchPolicy(commit_slack_s=60 * MIN, max_bundle_size=3),
    ]
)


@settings(max_examples=150, deadline=None)
@given(snapshots(), policies)
def test_no_courier_gets_two_bundles_at_once(snap, policy):
    plan = plan_round(snap, policy)
    ids = [a.courier_id for a in plan.assignments] + [p.courier_id for p in plan.prepositions]
    assert len(ids) == len(set(ids))


@settings(max_examples=150, deadline=None)
@given(snapshots(), policies)
def test_no_order_goes_to_two_couriers(snap, policy):
    plan = plan_round(snap, policy)
    ids = [o for a in plan.assignments for o in a.order_ids]
    assert len(ids) == len(set(ids))
    assert set(ids) <= {o.order_id for o in snap.orders}


@settings(max_examples=150, deadline=None)
@given(snapshots(), policies)
def test_no_pickup_before_ready_or_after_shift_end_and_couriers_idle(snap, policy):
    plan = plan_round(snap, policy)
    orders = {o.order_id: o for o in snap.orders}
    couriers = {c.courier_id: c for c in snap.couriers}
    for a in plan.assignments:
        c = couriers[a.courier_id]
        assert a.pickup_s >= max(orders[i].ready_s for i in a.order_ids)
        assert a.pickup_s <= c.shift_end_s
        assert c.free_s <= snap.now_s and c.shift_start_s <= snap.now_s


@settings(max_examples=150, deadline=None)
@given(snapshots(), policies)
def test_bundles_hold_orders_of_one_merchant(snap, policy):
    orders = {o.order_id: o for o in snap.orders}
    for a in plan_round(snap, policy).assignments:
        assert {orders[i].merchant_id for i in a.order_ids} == {a.merchant_id}


@st.composite
def snapshots_with_waiting_couriers(draw):
    """Snapshots where some couriers wait at the merchant of their committed bundle."""
    snap = draw(snapshots())
    committed = []
    couriers = list(snap.couriers)
    for j in range(draw(st.integers(1, 3))):
        m = draw(st.sampled_from(sorted(MERCHANTS)))
        arrival = snap.now_s - draw(st.integers(0, 10)) * MIN
        ready = arrival + draw(st.integers(-10, 20)) * MIN
        pickup = max(ready, arrival + 2 * MIN, snap.now_s)
        mx, my = MERCHANTS[m]
        held = OpenOrder(
            order_id=f"held{j}",
            merchant_id=m,
            placed_s=min(ready, snap.now_s),
            ready_s=ready,
            pickup_x_m=mx,
            pickup_y_m=my,
            dropoff_x_m=draw(coord),
            dropoff_y_m=draw(coord),
        )
        cid = f"w{j}"
        couriers.append(
            CourierState(
                courier_id=cid,
                x_m=draw(coord),
                y_m=draw(coord),
                free_s=pickup + 30 * MIN,
                shift_start_s=0.0,
                shift_end_s=pickup + draw(st.integers(0, 20)) * MIN,
            )
        )
        committed.append(
            CommittedAssignment(
                courier_id=cid,
                merchant_id=m,
                orders=(held,),
                arrival_s=arrival,
                pickup_s=pickup,
            )
        )
    return replace(snap, couriers=tuple(couriers), committed=tuple(committed))


@settings(max_examples=150, deadline=None)
@given(snapshots_with_waiting_couriers())
def test_assignment_updates_only_grow_a_waiting_bundle_with_open_orders_of_its_merchant(snap):
    plan = plan_round(snap, DispatchPolicy())
    open_orders = {o.order_id: o for o in snap.orders}
    held = {a.courier_id: a for a in snap.committed}
    ends = {c.courier_id: c.shift_end_s for c in snap.couriers}
    assigned = {o for a in plan.assignments for o in a.order_ids}
    instructed = {a.courier_id for a in plan.assignments} | {
        p.courier_id for p in plan.prepositions
    }
    for u in plan.reassignments:
        before = held[u.courier_id]
        added = set(u.order_ids) - set(before.order_ids)
        assert set(before.order_ids) <= set(u.order_ids) and added
        assert len(u.order_ids) == len(set(u.order_ids)) <= DispatchPolicy().max_bundle_size
        assert added <= open_orders.keys() and not added & assigned
        assert {open_orders[i].merchant_id for i in added} == {before.merchant_id}
        readies = [open_orders[i].ready_s for i in added] + [o.ready_s for o in before.orders]
        assert before.pickup_s <= u.pickup_s == max(before.pickup_s, *readies)
        assert u.pickup_s <= ends[u.courier_id]
        assert u.courier_id not in instructed
    updated = [i for u in plan.reassignments for i in u.order_ids]
    assert len(updated) == len(set(updated))
