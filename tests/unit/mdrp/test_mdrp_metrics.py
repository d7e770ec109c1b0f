import pytest

from lastmile.sim.mdrp.instance import load_instance
from lastmile.sim.mdrp.metrics import compute_metrics, describe
from lastmile.sim.mdrp.runner import policy_named
from lastmile.sim.mdrp.simulation import simulate


def test_describe_reports_the_readme_statistics():
    d = describe([1, 2, 3, 4, 5])
    assert (d["mean"], d["min"], d["median"], d["max"], d["n"]) == (3.0, 1.0, 3.0, 5.0, 5)
    assert d["p10"] == pytest.approx(1.4)
    assert describe([])["mean"] is None


def test_a_courier_waiting_at_the_restaurant_meets_the_floor(instance_writer):
    folder = instance_writer(orders=[("o1", 640, 0, 0, "r1", 10)], couriers=[("c1", 0, 0, 0, 120)])
    m = compute_metrics(simulate(load_instance(folder), policy_named("optimised")))
    # floor = prep 10 + travel 2 + 2 + 2 service = 16 = click-to-door
    assert m["floor_mean"] == 16.0
    assert m["c2d_mean"] == 16.0
    assert m["c2d_excess"] == 0.0
    assert m["r2p_mean"] == 0.0


def test_pay_and_guarantee_follow_the_instance_parameters(instance_writer):
    folder = instance_writer(orders=[("o1", 640, 0, 0, "r1", 10)], couriers=[("c1", 0, 0, 0, 120)])
    m = compute_metrics(simulate(load_instance(folder), policy_named("optimised")))
    # 2 hours at 15/h beats 1 order at 10
    assert m["total_courier_compensation"] == 30.0
    assert m["cost_per_order"] == 30.0
    assert m["share_paid_guarantee"] == 1.0
    assert m["orders_delivered"] == 1 and m["undelivered_share"] == 0.0
    # driving 2 min + 4 pickup service + 4 drop-off service over 120 min of duty
    assert m["utilisation"] == pytest.approx(10 / 120)


def test_every_readme_metric_is_present(tiny_instance):
    m = compute_metrics(simulate(load_instance(tiny_instance), policy_named("greedy")))
    for key in (
        "click_to_door",
        "click_to_door_overage",
        "ready_to_door",
        "ready_to_pickup",
        "courier_utilisation",
        "orders_per_courier_hour",
        "total_courier_compensation",
        "share_paid_guarantee",
        "floor",
        "c2d_excess",
        "orders_per_bundle",
        "cost_per_order",
        "utilisation",
    ):
        assert key in m
    for key in ("mean", "std", "min", "p10", "median", "p90", "max"):
        assert key in m["click_to_door"]
