"""ETA rows from an MDRP replay, and `lastmile eta train|evaluate` on tiny generated
instances (no need for ../shared/mdrp)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from tests.unit.mdrp.conftest import write_instance
from typer.testing import CliRunner

from lastmile.cli import app
from lastmile.core.dispatch import (
    CommittedAssignment,
    CourierState,
    OpenOrder,
    Snapshot,
    TravelModel,
)
from lastmile.core.eta.features import numeric_matrix
from lastmile.sim.mdrp.eta_rows import PlacementView, eta_rows, replay, replay_table
from lastmile.sim.mdrp.instance import load_instance
from lastmile.sim.mdrp.runner import policy_named
from lastmile.sim.mdrp.simulation import simulate


def test_rows_hold_what_was_known_at_placement(tiny_instance):
    inst = load_instance(tiny_instance)
    result = simulate(inst, policy_named("greedy"))
    features, outcomes = eta_rows(inst, result)
    by_id = {o.order_id: (f, out) for o, f, out in
             zip([o for o in inst.orders if o.order_id in result.deliveries], features, outcomes,
                 strict=True)}
    f1, _ = by_id["o1"]
    assert f1.travel_s == 360.0  # 640 m at 320 m/min = 2 min, + 2 + 2 handover minutes
    assert f1.prep_mean_s == 600.0 and f1.items is None
    f4, out4 = by_id["o4"]
    assert f4.prep_mean_s == 900.0
    assert f4.orders_per_min == (0.4, 0.0, 0.0, 0.0, 0.0, 0.2)  # o2, o3 in (0, 5]; o4 itself
    assert all(0.0 <= v <= 2.0 for v in f4.idle_couriers)
    for o, (_, out) in by_id.items():
        d = result.deliveries[o]
        placed = next(x.placement_time for x in inst.orders if x.order_id == o)
        assert out.total_s == (d.dropoff_time - placed) * 60
        assert out.assign_s + out.to_merchant_s + out.wait_s + out.to_consumer_s == out.total_s
        assert min(out.assign_s, out.to_merchant_s, out.wait_s, out.to_consumer_s) >= 0
    assert out4.total_s > 0


def test_a_cached_replay_reads_back_the_same_table(tiny_instance, tmp_path):
    first = replay_table(tiny_instance, cache_dir=tmp_path / "cache")
    again = replay_table(tiny_instance, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert np.array_equal(first.total_s, again.total_s)
    assert np.array_equal(first.matrix, again.matrix, equal_nan=True)  # no cart: NaN


def random_instance(folder: Path, seed: int) -> Path:
    rng = random.Random(seed)
    restaurants = [(f"r{i}", rng.randint(0, 6000), rng.randint(0, 6000)) for i in range(5)]
    orders = []
    for i in range(90):
        placed = rng.randint(0, 240)
        orders.append((f"o{i}", rng.randint(0, 6000), rng.randint(0, 6000), placed,
                       f"r{rng.randrange(5)}", placed + rng.randint(5, 20)))
    couriers = [(f"c{i}", rng.randint(0, 6000), rng.randint(0, 6000), rng.choice((0, 60)),
                 rng.choice((240, 300))) for i in range(rng.choice((5, 9)))]
    return write_instance(folder, restaurants=restaurants, orders=orders, couriers=couriers)


@pytest.mark.slow
def test_train_then_evaluate_prints_the_contract(tmp_path):
    train = [random_instance(tmp_path / f"{s}x{s}", s) for s in (0, 1, 2)]
    test = random_instance(tmp_path / "3x3", 3)
    runner = CliRunner()
    args = ["eta", "train", *(a for d in train for a in ("--mdrp", str(d))),
            "--out", str(tmp_path / "model"), "--rounds", "30", "--version", "2"]
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.output
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["version"] == 2 and meta["trained_on"]["instances"] == ["0x0", "1x1", "2x2"]
    result = runner.invoke(app, ["eta", "evaluate", "--model", str(tmp_path / "model"),
                                 "--mdrp", str(test)])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert set(last) == {"heuristic", "model", "orders"}
    assert last["orders"] > 0
    for side in ("heuristic", "model"):
        assert last[side]["mae_s"] > 0 and 0 <= last[side]["coverage80"] <= 1


def test_evaluate_without_a_model_fails_naming_it(tiny_instance, tmp_path):
    result = CliRunner().invoke(app, ["eta", "evaluate", "--model", str(tmp_path / "none"),
                                      "--mdrp", str(tiny_instance)])
    assert result.exit_code == 2
    assert "model.json" in result.output


def test_placement_view_reads_couriers_and_open_work_from_the_snapshot(tiny_instance):
    inst = load_instance(tiny_instance)  # r2 at (3200, 0); 320 m per minute
    view = PlacementView(inst)

    def order(oid: str, merchant: str, x: float) -> OpenOrder:
        return OpenOrder(order_id=oid, merchant_id=merchant, placed_s=0.0, ready_s=600.0,
                         pickup_x_m=x, pickup_y_m=0.0, dropoff_x_m=0.0, dropoff_y_m=0.0)

    def courier(cid: str, x: float, y: float, free_s: float) -> CourierState:
        return CourierState(courier_id=cid, x_m=x, y_m=y, free_s=free_s, shift_start_s=0.0,
                            shift_end_s=7200.0)

    snap = Snapshot(
        now_s=300.0, orders=(order("o2", "r1", 0.0), order("o3", "r2", 3200.0)),
        couriers=(courier("c1", 3200.0, 640.0, 480.0),  # delivering: free in 3 min, 2 away
                  courier("c2", 3000.0, 0.0, 300.0),  # idle, 1 minute away
                  courier("c3", 0.0, 0.0, 900.0)),  # on its way to r2, there at 780 s
        travel=TravelModel(metres_per_step=320.0, step_s=60.0), pickup_service_s=240.0,
        dropoff_service_s=240.0,
        committed=(CommittedAssignment(courier_id="c3", merchant_id="r2",
                                       orders=(order("o9", "r2", 3200.0),), arrival_s=780.0,
                                       pickup_s=900.0),))
    view(5, snap)  # o3 is placed at minute 5
    # reach: c2 60 s, c1 180 + 120 s, c3 480 s (its arrival, not 600 + 600 after its route)
    # the queue: o2 (ready 600, placed first) takes c2 (free 300, 10 min away: pickup 1020);
    # o3 then takes c1 (free 480, 2 min away: 720, before c3's arrival pickup at 900)
    assert view.known == {"o3": {
        "courier_reach_s": 60.0, "courier_reach_3_s": 480.0, "idle_nearest_s": 60.0,
        "open_orders": 1.0, "merchant_open_orders": 1.0,
        "orders_ahead": 1.0, "orders_ahead_near": 1.0,  # o2's r1 is 10 minutes from r2
        "couriers_on_shift": 3.0, "committed_orders": 1.0,
        "busy_backlog_s": (180.0 + 0.0 + 600.0) / 3, "queue_pickup_s": 720.0 - 300.0}}


def test_the_queue_lets_a_committed_courier_take_one_more_order_on_its_way(tiny_instance):
    view = PlacementView(load_instance(tiny_instance))

    def order(oid: str, ready_s: float) -> OpenOrder:
        return OpenOrder(order_id=oid, merchant_id="r2", placed_s=0.0, ready_s=ready_s,
                         pickup_x_m=3200.0, pickup_y_m=0.0, dropoff_x_m=3200.0,
                         dropoff_y_m=3200.0)

    snap = Snapshot(
        now_s=300.0, orders=(order("o3", 1200.0), order("o5", 1260.0)),
        couriers=(CourierState(courier_id="c1", x_m=0.0, y_m=0.0, free_s=1200.0,
                               shift_start_s=0.0, shift_end_s=7200.0),
                  CourierState(courier_id="c3", x_m=0.0, y_m=0.0, free_s=1500.0,
                               shift_start_s=0.0, shift_end_s=2000.0)),
        travel=TravelModel(metres_per_step=320.0, step_s=60.0), pickup_service_s=240.0,
        dropoff_service_s=240.0,
        committed=(CommittedAssignment(courier_id="c3", merchant_id="r2",
                                       orders=(order("o9", 600.0),), arrival_s=780.0,
                                       pickup_s=840.0),))
    view(5, snap)
    # o3 (ready at minute 20, as the instance says) joins c3's bundle: pickup max(840, 1200),
    # before c1 (free at 1200, 10 minutes away: 1920) and c3 after its route (past its
    # shift's end)
    assert view.known["o3"]["queue_pickup_s"] == 1200.0 - 300.0
    assert view.known["o3"]["orders_ahead"] == 0.0


def test_the_first_placement_sees_both_idle_couriers(tiny_instance):
    inst = load_instance(tiny_instance)
    result, known = replay(inst, "greedy")
    # o1 at r1 (0, 0), minute 0: c1 100 m away (1 min), c2 3000 m (10 min), both idle
    k = known["o1"]
    assert (k["courier_reach_s"], k["idle_nearest_s"], k["open_orders"],
            k["merchant_open_orders"]) == (60.0, 60.0, 0.0, 0.0)
    assert math.isnan(k["courier_reach_3_s"])  # two couriers only
    assert (k["orders_ahead"], k["committed_orders"], k["busy_backlog_s"]) == (0.0, 0.0, 0.0)
    features, _ = eta_rows(inst, result, known)
    f1 = features[[o.order_id for o in inst.orders if o.order_id in result.deliveries]
                  .index("o1")]
    assert f1.courier_reach_s == 60.0 and f1.idle_nearest_s == 60.0
    assert f1.open_orders == 0.0 and f1.merchant_open_orders == 0.0
    # nothing has been committed or picked up before the first order
    assert all(math.isnan(v) for v in (*f1.assign_delay_s, *f1.pickup_delay_s))
    assert math.isnan(f1.merchant_pickup_delay_s)


@pytest.mark.parametrize("cut_min", [60, 150])
def test_placement_features_ignore_orders_placed_later(tmp_path, cut_min):
    full_dir = random_instance(tmp_path / "0x0", 0)
    full = load_instance(full_dir)
    early = [o for o in full.orders if o.placement_time <= cut_min]
    cut = load_instance(write_instance(
        tmp_path / "0x1",
        restaurants=[(r.restaurant_id, r.x, r.y) for r in full.restaurants.values()],
        orders=[(o.order_id, o.x, o.y, o.placement_time, o.restaurant_id, o.ready_time)
                for o in early],
        couriers=[(c.courier_id, c.x, c.y, c.on_time, c.off_time) for c in full.couriers]))
    result_full, known_full = replay(full, "optimised")
    result_cut, known_cut = replay(cut, "optimised")
    assert set(known_cut) == {o.order_id for o in early}
    # every feature row, the realised delay series and idle counts included, is the same
    rows_full, _ = eta_rows(full, result_full, known_full)
    rows_cut, _ = eta_rows(cut, result_cut, known_cut)
    by_id = {f_id: f for f_id, f in zip(
        [o.order_id for o in full.orders if o.order_id in result_full.deliveries], rows_full,
        strict=True)}
    compared = 0
    for oid, f in zip([o.order_id for o in cut.orders if o.order_id in result_cut.deliveries],
                      rows_cut, strict=True):
        if oid in by_id:
            assert np.allclose(numeric_matrix([f]), numeric_matrix([by_id[oid]]),
                               equal_nan=True), oid
            compared += 1
    assert compared >= len(early) // 2


def test_train_refuses_an_unknown_base_naming_it(tiny_instance, tmp_path):
    result = CliRunner().invoke(app, ["eta", "train", "--mdrp", str(tiny_instance),
                                      "--out", str(tmp_path / "m"), "--base", "median"])
    assert result.exit_code == 2
    assert "--base must be one of" in result.output
    assert not (tmp_path / "m").exists()


def test_train_records_the_base_it_learnt_over(tmp_path):
    train = [random_instance(tmp_path / f"{s}x{s}", s) for s in (0, 1)]
    result = CliRunner().invoke(app, ["eta", "train", *(a for d in train for a in ("--mdrp", str(d))),
                                      "--out", str(tmp_path / "m"), "--rounds", "5",
                                      "--base", "queue"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["target"] == "total_s - queue_point_s"
    assert meta["trained_on"]["base"] == "queue"
