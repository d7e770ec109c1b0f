"""bench/eta.py on synthetic tables: every model scored, the contract's last line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from tests.unit.eta.builders import a_table

# By path: the name ``eta`` is also tests/unit/eta, the models' unit tests.
_SPEC = importlib.util.spec_from_file_location(
    "bench_eta", Path(__file__).resolve().parents[3] / "bench" / "eta.py")
assert _SPEC is not None and _SPEC.loader is not None
eta_bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(eta_bench)


@pytest.mark.slow
def test_the_bench_scores_every_model_and_builds_the_contract_line(capsys):
    train = [a_table(600, seed=s) for s in range(5)]
    result, model = eta_bench.run("synthetic", train, a_table(1500, seed=9))
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x.get("model") for x in lines[:3]] == ["heuristic", "weibull", "lightgbm"]
    assert lines[3]["consistency"]["max_gap_s"] <= model.tolerance_s
    last = eta_bench.last_line({"mdrp": result})
    assert set(last["models"]) == {"heuristic", "weibull", "lightgbm"}
    for figures in last["models"].values():
        assert {"mae_s", "p90_abs_err_s", "coverage80"} <= set(figures)
    best = last["best"]
    assert last["mae_improvement"] == round(
        1 - last["models"][best]["mae_s"] / last["models"]["heuristic"]["mae_s"], 4)
    assert last["predictions_per_s"] > 0
    assert "rows" not in last
