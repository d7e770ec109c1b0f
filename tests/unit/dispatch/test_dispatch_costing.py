import numpy as np

from lastmile.core.dispatch import TravelModel
from lastmile.core.dispatch.bundling import make_bundle
from lastmile.core.dispatch.costing import INFEASIBLE, pair_costs

MIN = 60.0
TRAVEL = TravelModel(metres_per_step=320.0, step_s=60.0)

KW = {"travel": TRAVEL, "pickup_service_s": 4 * MIN, "dropoff_service_s": 4 * MIN}


def costs(couriers, bundles, now=0.0, idle_weight=0.2):
    return pair_costs(
        couriers,
        bundles,
        now_s=now,
        travel=TRAVEL,
        pickup_service_s=4 * MIN,
        idle_weight=idle_weight,
        late_weight=1.0,
    )


def test_pickup_is_never_before_the_ready_time(an_order, a_courier):
    b = make_bundle([an_order(ready_s=30 * MIN)], **KW)
    t = costs([a_courier()], [b])
    assert t.pickup_s[0, 0] == 30 * MIN


def test_pickup_waits_for_arrival_plus_half_the_pickup_service(an_order, a_courier):
    b = make_bundle([an_order(ready_s=0.0)], **KW)
    t = costs([a_courier(x_m=3200.0)], [b])  # 10 minutes away
    assert t.arrival_s[0, 0] == 10 * MIN
    assert t.pickup_s[0, 0] == 12 * MIN


def test_a_busy_courier_starts_from_its_free_time(an_order, a_courier):
    b = make_bundle([an_order(ready_s=0.0)], **KW)
    t = costs([a_courier(free_s=20 * MIN)], [b])
    assert t.arrival_s[0, 0] == 20 * MIN


def test_pickup_after_shift_end_is_infeasible(an_order, a_courier):
    b = make_bundle([an_order(ready_s=60 * MIN)], **KW)
    t = costs([a_courier(shift_end_s=50 * MIN)], [b])
    assert not t.feasible[0, 0]
    assert t.cost[0, 0] == INFEASIBLE


def test_a_nearer_courier_costs_less(an_order, a_courier):
    b = make_bundle([an_order(ready_s=0.0)], **KW)
    t = costs(
        [a_courier(courier_id="near", x_m=500.0), a_courier(courier_id="far", x_m=5000.0)], [b]
    )
    assert t.cost[0, 0] < t.cost[1, 0]


def test_courier_waiting_at_the_merchant_is_penalised(an_order, a_courier):
    b = make_bundle([an_order(ready_s=30 * MIN)], **KW)
    with_idle = costs([a_courier()], [b], idle_weight=1.0).cost[0, 0]
    without = costs([a_courier()], [b], idle_weight=0.0).cost[0, 0]
    assert with_idle - without == 28 * MIN


def test_matrix_shape_is_couriers_by_bundles(an_order, a_courier):
    bundles = [make_bundle([an_order(order_id=f"o{i}")], **KW) for i in range(3)]
    t = costs([a_courier(courier_id=f"c{i}") for i in range(2)], bundles)
    assert t.cost.shape == (2, 3)
    assert np.all(t.pickup_s >= 10 * MIN)


def test_driving_time_is_priced_by_the_travel_weight(an_order, a_courier):
    b = make_bundle([an_order(ready_s=60 * MIN)], **KW)
    args = {
        "now_s": 0.0,
        "travel": TRAVEL,
        "pickup_service_s": 4 * MIN,
        "idle_weight": 0.0,
        "late_weight": 1.0,
    }
    far = [a_courier(x_m=3200.0)]  # 10 minutes away, arrives long before ready
    plain = pair_costs(far, [b], **args).cost[0, 0]
    weighted = pair_costs(far, [b], travel_weight=0.5, **args).cost[0, 0]
    assert weighted - plain == 0.5 * 10 * MIN


def test_courier_time_used_is_priced_by_the_busy_weight(an_order, a_courier):
    # Courier free at 5 min, 10 minutes away, food ready at 30 min: it drives, waits, picks up
    # at 30 min and is free again the bundle's last_leg_end_s later.
    b = make_bundle([an_order(ready_s=30 * MIN, dropoff_x_m=3200.0)], **KW)
    args = {"now_s": 0.0, "travel": TRAVEL, "pickup_service_s": 4 * MIN, "idle_weight": 0.0,
            "late_weight": 1.0}
    courier = [a_courier(x_m=3200.0, free_s=5 * MIN)]
    plain = pair_costs(courier, [b], **args).cost[0, 0]
    weighted = pair_costs(courier, [b], busy_weight=0.5, **args).cost[0, 0]
    assert b.last_leg_end_s == (2 + 10 + 2 + 2) * MIN  # half pickup, drive, half drop-off x2
    assert weighted - plain == 0.5 * ((30 - 5) * MIN + b.last_leg_end_s)
