from dataclasses import replace

import pytest

from lastmile.core.dispatch import (
    CommittedAssignment,
    DispatchPolicy,
    Merchant,
    PolicyKind,
    plan_round,
)
from lastmile.core.dispatch.greedy import greedy_plan
from lastmile.core.errors import InvalidInput

MIN = 60.0
POLICY = DispatchPolicy(allow_prepositioning=False)


def test_an_urgent_order_goes_to_the_idle_courier_now(an_order, a_courier, a_snapshot):
    snap = a_snapshot(
        now_s=10 * MIN, orders=(an_order(ready_s=14 * MIN),), couriers=(a_courier(x_m=320.0),)
    )  # one minute away, 2 min service
    plan = plan_round(snap, POLICY)
    assert [(a.courier_id, a.order_ids) for a in plan.assignments] == [("c1", ("o1",))]
    assert plan.assignments[0].pickup_s == 14 * MIN


def test_an_order_ready_much_later_is_postponed(an_order, a_courier, a_snapshot):
    snap = a_snapshot(orders=(an_order(ready_s=30 * MIN),), couriers=(a_courier(),))
    assert plan_round(snap, POLICY).assignments == ()


def test_the_matching_waits_for_a_busy_courier_that_will_be_much_closer(
    an_order, a_courier, a_snapshot
):
    near_busy = a_courier(courier_id="busy", x_m=0.0, free_s=14 * MIN)
    far_idle = a_courier(courier_id="far", x_m=9600.0)  # 30 minutes away
    snap = a_snapshot(orders=(an_order(ready_s=15 * MIN),), couriers=(near_busy, far_idle))
    assert plan_round(snap, POLICY).assignments == ()


def test_orders_of_a_merchant_join_the_courier_waiting_there(an_order, a_courier, a_snapshot):
    waiting = CommittedAssignment(
        courier_id="c1",
        merchant_id="r1",
        orders=(an_order(),),
        arrival_s=5 * MIN,
        pickup_s=10 * MIN,
    )
    snap = a_snapshot(
        now_s=6 * MIN,
        orders=(an_order(order_id="o2", ready_s=9 * MIN),),
        couriers=(a_courier(free_s=20 * MIN),),
        committed=(waiting,),
    )
    plan = plan_round(snap, POLICY)
    assert [(u.courier_id, sorted(u.order_ids)) for u in plan.reassignments] == [
        ("c1", ["o1", "o2"])
    ]
    assert plan.assignments == ()


def test_no_updates_when_the_variant_is_off(an_order, a_courier, a_snapshot):
    waiting = CommittedAssignment(
        courier_id="c1",
        merchant_id="r1",
        orders=(an_order(),),
        arrival_s=5 * MIN,
        pickup_s=10 * MIN,
    )
    snap = a_snapshot(
        now_s=6 * MIN,
        orders=(an_order(order_id="o2", ready_s=9 * MIN),),
        couriers=(a_courier(free_s=20 * MIN),),
        committed=(waiting,),
    )
    assert plan_round(snap, replace(POLICY, allow_updates=False)).reassignments == ()


def _waiting_at_r1(an_order):
    return CommittedAssignment(courier_id="c1", merchant_id="r1", orders=(an_order(),),
                               arrival_s=5 * MIN, pickup_s=10 * MIN)


def test_in_a_quiet_round_an_idle_courier_takes_the_order_instead_of_the_waiting_one(
    an_order, a_courier, a_snapshot
):
    # One open order and one idle courier: joining c1 would delay o1's drop-off (o2's is
    # after it), so with quiet_update_max_extra_s 0 the bundle stays as it is.
    snap = a_snapshot(
        now_s=6 * MIN,
        orders=(an_order(order_id="o2", ready_s=9 * MIN),),
        couriers=(a_courier(free_s=20 * MIN), a_courier(courier_id="c2", x_m=320.0)),
        committed=(_waiting_at_r1(an_order),),
    )
    quiet = plan_round(snap, replace(POLICY, quiet_update_max_extra_s=0.0))
    assert quiet.reassignments == ()
    assert [(a.courier_id, a.order_ids) for a in quiet.assignments] == [("c2", ("o2",))]
    # Without the quiet limit the waiting courier takes it, as in every round before.
    lax = replace(POLICY, quiet_update_max_extra_s=15 * MIN)
    assert [sorted(u.order_ids) for u in plan_round(snap, lax).reassignments] == [["o1", "o2"]]


def test_when_orders_outnumber_idle_couriers_the_waiting_courier_still_takes_them(
    an_order, a_courier, a_snapshot
):
    snap = a_snapshot(
        now_s=6 * MIN,
        orders=(an_order(order_id="o2", ready_s=9 * MIN),
                an_order(order_id="o3", merchant_id="r2", ready_s=9 * MIN, pickup_x_m=3200.0)),
        couriers=(a_courier(free_s=20 * MIN), a_courier(courier_id="c2", x_m=320.0)),
        committed=(_waiting_at_r1(an_order),),
    )
    plan = plan_round(snap, replace(POLICY, quiet_update_max_extra_s=0.0))
    assert [sorted(u.order_ids) for u in plan.reassignments] == [["o1", "o2"]]


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_quiet_update_limit_must_be_a_non_negative_time(value):
    with pytest.raises(InvalidInput) as err:
        DispatchPolicy(quiet_update_max_extra_s=value)
    assert err.value.field == "quiet_update_max_extra_s"


def test_an_idle_courier_is_prepositioned_at_a_busy_merchant(a_courier, a_snapshot):
    snap = a_snapshot(
        couriers=(a_courier(x_m=3200.0),),
        merchants=(
            Merchant(merchant_id="quiet", x_m=3000.0, y_m=0.0, demand_weight=0.0),
            Merchant(merchant_id="busy", x_m=0.0, y_m=0.0, demand_weight=5.0),
        ),
    )
    plan = plan_round(snap, DispatchPolicy())
    assert [(p.courier_id, p.merchant_id, p.arrival_s) for p in plan.prepositions] == [
        ("c1", "busy", 10 * MIN)
    ]


def test_greedy_gives_each_order_the_nearest_idle_courier(an_order, a_courier, a_snapshot):
    snap = a_snapshot(
        orders=(an_order(),),
        couriers=(
            a_courier(courier_id="far", x_m=5000.0),
            a_courier(courier_id="near", x_m=100.0),
            a_courier(courier_id="busy", x_m=0.0, free_s=60.0),
        ),
    )
    plan = plan_round(snap, DispatchPolicy(kind=PolicyKind.GREEDY))
    assert [a.courier_id for a in plan.assignments] == ["near"]
    assert plan == greedy_plan(snap)


def test_greedy_skips_couriers_whose_shift_ends_before_the_pickup(an_order, a_courier, a_snapshot):
    snap = a_snapshot(
        orders=(an_order(ready_s=60 * MIN),), couriers=(a_courier(shift_end_s=30 * MIN),)
    )
    assert greedy_plan(snap).assignments == ()
