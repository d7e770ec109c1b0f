"""Dispatch never offers a test order to a real courier, or the reverse (seed 003): a round
pairs an order only with a courier of its own tenant, and still serves every tenant of a
snapshot that mixes them."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import MIN, snapshots, snapshots_with_waiting_couriers

from lastmile.core.dispatch import (
    Assignment,
    DispatchPlan,
    DispatchPolicy,
    PolicyKind,
    Snapshot,
    check_plan,
    plan_round,
    split_by_tenant,
)
from lastmile.core.errors import Forbidden

LIVE, TEST = "lastmile:default", "doortest:sandbox"
GREEDY = DispatchPolicy(kind=PolicyKind.GREEDY)
policies = st.sampled_from([DispatchPolicy(), GREEDY,
                            DispatchPolicy(commit_slack_s=60 * MIN, max_bundle_size=3)])
tenants = st.sampled_from([LIVE, TEST])


@st.composite
def mixed_snapshots(draw: st.DrawFn) -> Snapshot:
    """A rush where each order, courier and merchant is drawn live or test; a held bundle
    and its orders belong to its courier's tenant."""
    snap = draw(st.one_of(snapshots(), snapshots_with_waiting_couriers()))
    couriers = tuple(replace(c, tenant=draw(tenants)) for c in snap.couriers)
    of = {c.courier_id: c.tenant for c in couriers}
    committed = tuple(replace(a, orders=tuple(replace(o, tenant=of[a.courier_id])
                                              for o in a.orders)) for a in snap.committed)
    return replace(
        snap, tenant=draw(tenants), couriers=couriers, committed=committed,
        orders=tuple(replace(o, tenant=draw(tenants)) for o in snap.orders),
        merchants=tuple(replace(m, tenant=draw(tenants)) for m in snap.merchants))


def _tenants(snap: Snapshot) -> tuple[dict[str, str], dict[str, str]]:
    couriers = {c.courier_id: c.tenant for c in snap.couriers}
    orders = {o.order_id: o.tenant for o in snap.orders}
    orders.update({o.order_id: o.tenant for a in snap.committed for o in a.orders})
    return couriers, orders


@settings(max_examples=200, deadline=None)
@given(mixed_snapshots(), policies)
def test_no_round_pairs_an_order_with_a_courier_of_another_tenant(snap, policy):
    plan = plan_round(snap, policy)
    couriers, orders = _tenants(snap)
    for a in (*plan.assignments, *plan.reassignments):
        assert {orders[i] for i in a.order_ids} == {couriers[a.courier_id]}
    merchants = {m.merchant_id: m.tenant for m in snap.merchants}
    for p in plan.prepositions:
        assert merchants[p.merchant_id] == couriers[p.courier_id]


@settings(max_examples=100, deadline=None)
@given(mixed_snapshots(), policies)
def test_a_mixed_snapshot_is_planned_as_one_round_per_tenant(snap, policy):
    """Every tenant is served as if alone: the plan is the union of the per-tenant plans."""
    plan = plan_round(snap, policy)
    alone = [plan_round(world, policy) for world in split_by_tenant(snap)]
    assert set(plan.assignments) == {a for p in alone for a in p.assignments}
    assert set(plan.reassignments) == {r for p in alone for r in p.reassignments}


def test_a_test_order_is_never_offered_to_the_only_courier_a_live_one(a_snapshot, an_order,
                                                                      a_courier):
    snap = a_snapshot(orders=(an_order(tenant=TEST),), couriers=(a_courier(tenant=LIVE),))
    for policy in (DispatchPolicy(commit_slack_s=60 * MIN), GREEDY):
        assert plan_round(snap, policy).assignments == ()


def test_each_tenant_gets_its_own_courier_even_when_the_other_is_nearer(a_snapshot, an_order,
                                                                        a_courier):
    # Each courier stands at the other tenant's merchant.
    snap = a_snapshot(
        orders=(an_order(order_id="live", tenant=LIVE),
                an_order(order_id="test", tenant=TEST, pickup_x_m=5000.0)),
        couriers=(a_courier(courier_id="c-test", tenant=TEST, x_m=0.0),
                  a_courier(courier_id="c-live", tenant=LIVE, x_m=5000.0)))
    for policy in (DispatchPolicy(commit_slack_s=60 * MIN), GREEDY):
        plan = plan_round(snap, policy)
        assert {(a.courier_id, a.order_ids) for a in plan.assignments} == {
            ("c-live", ("live",)), ("c-test", ("test",))}


def test_a_plan_pairing_two_tenants_is_refused(a_snapshot, an_order, a_courier):
    snap = a_snapshot(orders=(an_order(order_id="o1", tenant=TEST),),
                      couriers=(a_courier(courier_id="c1", tenant=LIVE),))
    crossing = DispatchPlan(assignments=(Assignment(
        courier_id="c1", merchant_id="r1", order_ids=("o1",), arrival_s=0.0, pickup_s=0.0),))
    with pytest.raises(Forbidden) as err:
        check_plan(snap, crossing)
    assert err.value.code == "cross_tenant"
    assert "order o1 (doortest:sandbox)" in err.value.message


def test_a_snapshot_of_one_tenant_is_planned_whole(a_snapshot, an_order, a_courier):
    snap = a_snapshot(orders=(an_order(),), couriers=(a_courier(),))
    assert split_by_tenant(snap) == (snap,)
