"""Courier compensation of MDRP solutions, checked against totals worked out by hand from
the README's rule: pay = max(pay per order x orders, pay per hour x (off - on) / 60),
every courier of couriers.txt counted, one who delivered nothing too."""

import json
from pathlib import Path

import pytest

from lastmile.core.errors import InvalidInput
from lastmile.core.pay.mdrp import mdrp_policy
from lastmile.sim.mdrp.command import mdrp
from lastmile.sim.mdrp.instance import load_instance
from lastmile.sim.mdrp.pay import courier_statements, delivered_from_solution, payment_metrics
from lastmile.sim.mdrp.solution import ORDERS_FILE, ORDERS_HEADER

ORDERS = (  # order, x, y, placement, restaurant, ready
    ("o1", 640, 0, 0, "r1", 10),
    ("o2", 0, 960, 2, "r1", 11),
    ("o3", 3200, 640, 5, "r2", 20),
    ("o4", 1000, 1000, 30, "r2", 45),
    ("o5", 1000, 0, 40, "r1", 50),
)
COURIERS = (  # courier, x, y, on, off
    ("c1", 0, 0, 0, 90),     # 1 order: max(10, 15 x 1.5 = 22.50) = 22.50
    ("c2", 0, 0, 30, 120),   # 3 orders: max(30, 22.50) = 30.00
    ("c3", 0, 0, 60, 67),    # nothing: max(0, 15 x 7/60 = 1.75) = 1.75
    ("c4", 0, 0, 100, 90),   # off before on, nothing: 0
)


def write_orders_solution(out: Path, rows: list[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / ORDERS_FILE).write_text("\n".join([ORDERS_HEADER, *rows]) + "\n")
    return out


@pytest.fixture
def solved(instance_writer, tmp_path):
    folder = instance_writer(orders=ORDERS, couriers=COURIERS)
    out = write_orders_solution(tmp_path / "sol", [
        "o1 0 10 12 20 c1",
        "o2 2 11 14 30 c2",
        "o3 5 20 22 40 c2",
        "o4 30 45 47 60 c2",
        "o5 40 50 NA NA NA",     # undelivered: nobody's
    ])
    return load_instance(folder), out


def test_the_total_is_the_sum_of_each_couriers_max_of_orders_and_guarantee(solved):
    instance, out = solved
    statements = courier_statements(instance, delivered_from_solution(instance, out))
    assert [s.total.amount_minor for s in statements] == [2_250, 3_000, 175, 0]
    m = payment_metrics(statements)
    assert m["total_payment"] == 54.25 and m["total_payment_minor"] == 5_425
    # c1 and c3 are topped up to the guarantee (the evaluator's "true-up" share)
    assert m["couriers_topped_up"] == 2 and m["couriers_paid"] == 4


def test_a_courier_the_instance_does_not_know_counts_for_nobody(instance_writer, tmp_path):
    instance = load_instance(instance_writer(orders=ORDERS, couriers=COURIERS[:1]))
    out = write_orders_solution(tmp_path / "sol", ["o1 0 10 12 20 c9", "o2 2 11 14 30 c1"])
    (s,) = courier_statements(instance, delivered_from_solution(instance, out))
    assert s.orders == 1 and s.total.amount_minor == 2_250


def test_statements_explain_the_top_up(solved):
    instance, out = solved
    c1 = courier_statements(instance, delivered_from_solution(instance, out))[0]
    assert [(ln.order_id, ln.component, ln.amount.amount_minor) for ln in c1.lines] == [
        ("o1", "base", 1_000), (None, "guarantee_top_up", 1_250)]


def test_pay_rates_in_fractions_of_a_cent_are_refused():
    with pytest.raises(InvalidInput) as err:
        mdrp_policy(pay_per_order=10.005, pay_per_hour=15)
    assert err.value.field == "pay per order"


def test_a_fractional_hourly_rate_is_prorated_per_minute():
    # 12.60/h x 45 min = 9.45, a whole number of cents: exact
    from lastmile.core.pay.mdrp import mdrp_shift
    from lastmile.core.pay.pipeline import statement

    p = mdrp_policy(pay_per_order="7.25", pay_per_hour="12.60")
    s = statement(p, mdrp_shift(courier_id="c", on_time_min=15, off_time_min=60,
                                delivered=[("o1", 30)]))
    assert s.total.amount_minor == 945


def test_lastmile_mdrp_writes_total_payment_in_dollars(instance_writer, tmp_path):
    # One courier can do everything; the second's shift starts after the last order is
    # delivered, so it delivers nothing: c1 = max(5 x 10, 2 h x 15) = 50.00,
    # c2 = 15 x 30/60 = 7.50; total 57.50.
    folder = instance_writer(orders=ORDERS, couriers=[("c1", 100, 0, 0, 120),
                                                      ("c2", 50_000, 0, 300, 330)])
    out = tmp_path / "out"
    mdrp([folder], out=out, policy="optimised")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["orders_delivered"] == 5 and metrics["feasible"] is True
    assert metrics["total_payment"] == 57.50
    assert metrics["total_courier_compensation"] == 57.50
    assert metrics["share_paid_guarantee"] == 0.5


def test_metrics_and_the_solution_file_agree_on_pay(tiny_instance, tmp_path):
    out = tmp_path / "out"
    mdrp([tiny_instance], out=out, policy="greedy")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["total_payment"] == metrics["total_courier_compensation"]
    # tiny: 4 orders between c1 (2 h, 30.00) and c2 (1 h, 15.00)
    rows = [ln.split() for ln in (out / ORDERS_FILE).read_text().splitlines()[1:]]
    n1 = sum(1 for r in rows if r[5] == "c1")
    n2 = sum(1 for r in rows if r[5] == "c2")
    assert metrics["total_payment"] == max(10 * n1, 30) + max(10 * n2, 15)
