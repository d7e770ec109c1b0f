"""`lastmile eta train|evaluate --history`: the learned ETA model from the platform's own
delivery history exports, served from the model registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.unit.eta.builders import COL, a_table
from typer.testing import CliRunner

from lastmile.adapters.eta_models import FileModelRegistry
from lastmile.adapters.eta_parquet import write_history
from lastmile.cli import app
from lastmile.core.eta.engine import estimate
from lastmile.core.eta.features import SERIES_BUCKETS, EtaFeatures, EtaOutcome
from lastmile.core.eta.history import Finish, HistoryRecord


def _export(path: Path, *, seed: int, n: int = 400) -> Path:
    """A history export of ``n`` deliveries drawn from the synthetic rule, plus one
    cancellation (no outcome: never trained on)."""
    t = a_table(n, seed=seed)
    records = []
    for i, (row, total) in enumerate(zip(t.matrix, t.total_s, strict=True)):
        f = EtaFeatures(
            merchant_id=str(t.merchant[i]), region="reg_1", hour=int(row[COL["hour"]]),
            weekday=3, distance_m=row[COL["distance_m"]], travel_s=row[COL["travel_s"]],
            prep_mean_s=row[COL["prep_mean_s"]], prep_p90_s=row[COL["prep_p90_s"]],
            orders_per_min=tuple(row[COL[f"orders_per_min_{b}"]] for b in range(SERIES_BUCKETS)),
            idle_couriers=tuple(row[COL[f"idle_couriers_{b}"]] for b in range(SERIES_BUCKETS)),
            items=int(row[COL["items"]]), subtotal_minor=int(row[COL["subtotal_minor"]]))
        placed = 1_767_254_400.0 + 43_200 + i * 60
        outcome = EtaOutcome(assign_s=60.0, to_merchant_s=240.0, wait_s=60.0,
                             to_consumer_s=float(total) - 360.0, total_s=float(total))
        records.append(HistoryRecord(
            order_id=f"ord_{seed}_{i}", channel="marketplace", placed_at=placed, features=f,
            quoted_low_s=600.0, quoted_s=1_500.0, quoted_high_s=2_400.0,
            finish=Finish(status="delivered", finished_at=placed + float(total), prep_s=600.0,
                          outcome=outcome)))
    records.append(HistoryRecord(
        order_id=f"ord_{seed}_cancel", channel="marketplace", placed_at=1_767_300_000.0,
        features=records[0].features, quoted_low_s=600.0, quoted_s=1_500.0,
        quoted_high_s=2_400.0, finish=Finish(status="cancelled", finished_at=1_767_300_060.0,
                                             prep_s=None, outcome=None, cancelled_from="placed")))
    write_history(records, path)
    return path


def test_train_on_history_exports_writes_a_model_the_registry_serves(tmp_path):
    days = [_export(tmp_path / f"day-{s}.parquet", seed=s) for s in (1, 2, 3)]
    models = tmp_path / "models"
    args = ["eta", "train", "--out", str(models / "lightgbm-4"), "--version", "4",
            *(a for d in days for a in ("--history", str(d)))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["name"] == "lightgbm-4" and line["orders"] == 1_200  # the cancellations left out
    meta = json.loads((models / "lightgbm-4" / "model.json").read_text())
    assert meta["trained_on"]["kind"] == "history"
    assert meta["trained_on"]["instances"] == ["day-1", "day-2", "day-3"]

    (models / "registry.json").write_text(json.dumps({"incumbent": "lightgbm-4"}))
    served = FileModelRegistry(models).incumbent()
    assert served is not None and served.name == "lightgbm-4"
    held_out = _export(tmp_path / "day-9.parquet", seed=9)
    evaluated = CliRunner().invoke(app, ["eta", "evaluate", "--model",
                                         str(models / "lightgbm-4"), "--history", str(held_out)])
    assert evaluated.exit_code == 0, evaluated.output
    scores = json.loads(evaluated.output.strip().splitlines()[-1])
    assert scores["orders"] == 400
    assert scores["model"]["mae_s"] < scores["heuristic"]["mae_s"]
    from lastmile.adapters.eta_parquet import read_history

    first = read_history(held_out)[0]
    got = estimate(first.features, served)
    assert got.model == "lightgbm-4" and np.isfinite(got.point_s)


def test_train_needs_something_to_train_on(tmp_path):
    result = CliRunner().invoke(app, ["eta", "train", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--history" in result.output


def test_train_names_a_file_that_is_not_a_history_export(tmp_path):
    bad = tmp_path / "x.parquet"
    bad.write_text("not parquet")
    result = CliRunner().invoke(app, ["eta", "train", "--out", str(tmp_path / "m"),
                                      "--history", str(bad)])
    assert result.exit_code == 2 and "x.parquet" in result.output


def test_a_simulated_day_serves_the_registry_s_incumbent(tmp_path):
    from lastmile.adapters.eta_models import write_heuristic
    from lastmile.adapters.eta_parquet import read_history
    from lastmile.core.eta.engine import HeuristicParams
    from lastmile.sim.simulate_command import run_scenario

    models = tmp_path / "models"
    models.mkdir()
    write_heuristic(models / "wide.json", HeuristicParams(
        name="heuristic-x4", p10_ratio=0.5, p90_ratio=4.0, queue_p10=0.5, queue_p90=4.0))
    (models / "registry.json").write_text(json.dumps({"incumbent": "wide.json"}))
    run_scenario("tiny", seed=7, hours=0.75, data_dir=tmp_path / "db", eta_models=models)
    out = tmp_path / "h.parquet"
    exported = CliRunner().invoke(app, ["eta", "export", "--data-dir", str(tmp_path / "db"),
                                        "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    records = read_history(out)
    assert records
    for r in records:  # every quote came from the registry's model: the window is x0.5-x4
        assert r.quoted_high_s / r.quoted_s == pytest.approx(4.0, rel=1e-6)
        assert r.quoted_low_s / r.quoted_s == pytest.approx(0.5, rel=1e-6)
