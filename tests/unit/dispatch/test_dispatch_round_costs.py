"""``round_costs``: the engine's steps 1-4, the matrix ``plan_round`` matches on (and the one
``bench/dispatch_scaling.py`` times, so the bench never carries a copy of the cost)."""

from dataclasses import replace

import numpy as np

from lastmile.core.dispatch import DispatchPolicy, plan_round, round_costs
from lastmile.core.dispatch.costing import pair_costs
from lastmile.core.dispatch.matching import optimal_matching

MIN = 60.0
POLICY = DispatchPolicy(allow_prepositioning=False)


def test_every_assignment_of_a_round_is_a_pair_of_the_round_costs_matching(
    an_order, a_courier, a_snapshot
):
    orders = tuple(
        an_order(order_id=f"o{i}", merchant_id=f"r{i % 3}", pickup_x_m=1000.0 * (i % 3),
                 ready_s=(2 + i % 4) * MIN)
        for i in range(9)
    )
    couriers = tuple(a_courier(courier_id=f"c{j}", x_m=700.0 * j) for j in range(4))
    snap = a_snapshot(orders=orders, couriers=couriers)
    costs = round_costs(snap, POLICY)
    assert costs.times is not None
    matched = {
        (costs.couriers[i].courier_id, costs.bundles[j].order_ids)
        for i, j in optimal_matching(costs.times.cost)
    }
    plan = plan_round(snap, POLICY)
    assert plan.assignments
    assert {(a.courier_id, a.order_ids) for a in plan.assignments} <= matched


def test_round_costs_add_the_shortage_travel_weight_when_bundles_outnumber_couriers(
    an_order, a_courier, a_snapshot
):
    # Two merchants far apart and one courier: two bundles, one courier, a shortage round.
    orders = (an_order(order_id="o1"), an_order(order_id="o2", merchant_id="r2",
                                                  pickup_x_m=5000.0))
    snap = a_snapshot(orders=orders, couriers=(a_courier(x_m=2000.0),))
    costs = round_costs(snap, POLICY)
    assert costs.times is not None and len(costs.bundles) > len(costs.couriers)
    plain = pair_costs(costs.couriers, costs.bundles, now_s=snap.now_s, travel=snap.travel,
                       pickup_service_s=snap.pickup_service_s, idle_weight=POLICY.idle_weight,
                       late_weight=POLICY.late_weight)
    extra = POLICY.shortage_travel_weight * costs.times.travel_s
    start = np.array([[max(snap.now_s, c.free_s, c.shift_start_s)] for c in costs.couriers])
    busy = costs.times.pickup_s - start + np.array([b.last_leg_end_s for b in costs.bundles])
    extra += POLICY.shortage_busy_weight * busy
    assert np.allclose(costs.times.cost, plain.cost + extra, rtol=0.0, atol=1e-6)


def test_round_costs_price_courier_time_only_in_shortage_rounds(an_order, a_courier, a_snapshot):
    orders = (an_order(order_id="o1"), an_order(order_id="o2", merchant_id="r2",
                                                  pickup_x_m=5000.0))
    weighted = DispatchPolicy(allow_prepositioning=False, shortage_busy_weight=1.0)
    short = a_snapshot(orders=orders, couriers=(a_courier(x_m=2000.0),))
    enough = a_snapshot(orders=orders, couriers=(a_courier(x_m=2000.0),
                                                 a_courier(courier_id="c2", x_m=2000.0)))
    for snap, priced in ((short, True), (enough, False)):
        with_busy = round_costs(snap, weighted).times
        without = round_costs(snap, replace(weighted, shortage_busy_weight=0.0)).times
        assert with_busy is not None and without is not None
        assert bool(np.all(with_busy.cost > without.cost)) is priced


def test_round_costs_of_a_round_without_couriers_have_no_matrix(an_order, a_snapshot):
    costs = round_costs(a_snapshot(orders=(an_order(),)), POLICY)
    assert costs.times is None and costs.couriers == ()


def test_bundle_from_now_bundles_orders_that_both_wait_already(an_order, a_courier, a_snapshot):
    # One courier, two orders of one merchant ready 20 minutes apart and both waiting at
    # 30 min: from now they wait alike, so the round offers them as one bundle.
    orders = (an_order(order_id="o1", ready_s=0.0), an_order(order_id="o2", ready_s=20 * MIN))
    snap = a_snapshot(now_s=30 * MIN, orders=orders, couriers=(a_courier(),))
    by_ready = round_costs(snap, replace(POLICY, bundle_from_now=False))
    from_now = round_costs(snap, replace(POLICY, bundle_from_now=True))
    assert sorted(b.order_ids for b in by_ready.bundles) == [("o1",), ("o2",)]
    assert [sorted(b.order_ids) for b in from_now.bundles] == [["o1", "o2"]]
