"""bench/eta_cv.py on synthetic tables: folds by seed, the "old columns" ablation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from tests.unit.eta.builders import COL, a_table

from lastmile.core.eta.features import EXTRA_COLUMNS, NUMERIC_COLUMNS

_SPEC = importlib.util.spec_from_file_location(
    "bench_eta_cv", Path(__file__).resolve().parents[3] / "bench" / "eta_cv.py")
assert _SPEC is not None and _SPEC.loader is not None
eta_cv = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(eta_cv)


def test_the_old_columns_setting_hides_exactly_the_queue_ahead_columns():
    t = a_table(20, seed=1)
    hidden = eta_cv.without_queue_columns(t)
    gone = {NUMERIC_COLUMNS[i] for i in range(len(NUMERIC_COLUMNS))
            if np.isnan(hidden.matrix[:, i]).all() and not np.isnan(t.matrix[:, i]).all()}
    assert gone == {*EXTRA_COLUMNS[5:], *(f"{s}_{i}" for s in ("assign_delay_s", "pickup_delay_s")
                                          for i in range(6))}
    assert np.array_equal(hidden.matrix[:, COL["courier_reach_s"]],
                          t.matrix[:, COL["courier_reach_s"]])


def test_one_fold_per_seed_and_the_improvement_is_over_the_same_rows():
    by_seed = {s: [a_table(150, seed=10 * int(s) + k) for k in range(5)] for s in "012"}
    out = eta_cv.cross_validate(by_seed, {"columns": "all", "base": "heuristic", "rounds": 5,
                                          "params": {}})
    assert [f["seed"] for f in out["folds"]] == ["0", "1", "2"]
    assert out["mae_s"] > 0 and 0 <= out["coverage80"] <= 1
    assert abs(out["improvement"] - (1 - out["mae_s"] / out["heuristic_mae_s"])) < 1e-3
