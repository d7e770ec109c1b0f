"""ETA rows from an MDRP replay, and `lastmile eta train|evaluate` on tiny generated
instances (no need for ../shared/mdrp)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from tests.unit.mdrp.conftest import write_instance
from typer.testing import CliRunner

from lastmile.cli import app
from lastmile.sim.mdrp.eta_rows import eta_rows, replay_table
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
