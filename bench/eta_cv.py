"""Choose the MDRP LightGBM settings by cross-validation inside the training split only.

Three folds by mdrplib seed inside seeds 0-2 (``bench/mdrp.py`` ``split_of``: seeds 3-4, the
test split, are never read here): each fold trains on two seeds' instances (every fifth
calibrates, as ``bench/eta.py``) and scores the third. One JSON line per setting: MAE of the
heuristic and of the model over the three held-out folds, the improvement, coverage of the
80% window, CPU seconds; last, the setting with the lowest MAE.

    PYTHONPATH=src nice -n 5 .venv/bin/python bench/eta_cv.py --root ../shared/mdrp \
        [--cache DIR] [--settings NAME,NAME]

Settings (``SETTINGS``): the base the boosters learn the excess over (``heuristic`` or
``queue``), rounds, leaves and learning rate, and ``columns``: ``all`` or ``old`` (the
queue-ahead columns set unknown, the model before them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from lastmile.core.eta.engine import HeuristicModel  # noqa: E402
from lastmile.core.eta.features import EXTRA_COLUMNS, EXTRA_SERIES, NUMERIC_COLUMNS  # noqa: E402
from lastmile.core.eta.quantile_gbm import train_two_stage  # noqa: E402
from lastmile.core.eta.table import EtaTable, concat  # noqa: E402
from lastmile.sim.mdrp.eta_rows import instance_dirs, replay_table  # noqa: E402

DEFAULT_ROOT = REPO.parent / "shared" / "mdrp"
DEFAULT_CACHE = Path.home() / ".cache" / "lastmile" / "eta"
QUEUE_COLUMNS = [i for i, c in enumerate(NUMERIC_COLUMNS)
                 if c in EXTRA_COLUMNS[5:] or c.rsplit("_", 1)[0] in EXTRA_SERIES]
"""The columns this change added (after the five courier fields of s23)."""

SETTINGS: dict[str, dict[str, Any]] = {
    "old-50x7": {"columns": "old", "base": "heuristic", "rounds": 50, "params": {}},
    "heuristic-50x7": {"columns": "all", "base": "heuristic", "rounds": 50, "params": {}},
    "queue-50x7": {"columns": "all", "base": "queue", "rounds": 50, "params": {}},
    "heuristic-150x15": {"columns": "all", "base": "heuristic", "rounds": 150,
                         "params": {"num_leaves": 15}},
    "queue-150x15": {"columns": "all", "base": "queue", "rounds": 150,
                     "params": {"num_leaves": 15}},
    "heuristic-150x7": {"columns": "all", "base": "heuristic", "rounds": 150, "params": {}},
    "heuristic-300x15-lr05": {"columns": "all", "base": "heuristic", "rounds": 300,
                              "params": {"num_leaves": 15, "learning_rate": 0.05}},
    "heuristic-200x31-lr05": {"columns": "all", "base": "heuristic", "rounds": 200,
                              "params": {"num_leaves": 31, "learning_rate": 0.05}},
    "queue-300x15-lr05": {"columns": "all", "base": "queue", "rounds": 300,
                          "params": {"num_leaves": 15, "learning_rate": 0.05}},
}


def without_queue_columns(t: EtaTable) -> EtaTable:
    m = t.matrix.copy()
    m[:, QUEUE_COLUMNS] = np.nan
    return EtaTable(matrix=m, merchant=t.merchant, source=t.source, total_s=t.total_s)


def fit_calibrate(tables: list[EtaTable]) -> tuple[EtaTable, EtaTable]:
    fit = [t for i, t in enumerate(tables) if i % 5 != 4]
    cal = [t for i, t in enumerate(tables) if i % 5 == 4]
    return concat(fit), concat(cal)


def cross_validate(by_seed: dict[str, list[EtaTable]], setting: dict[str, Any]
                   ) -> dict[str, Any]:
    cpu = time.process_time()
    errs: list[np.ndarray] = []
    herrs: list[np.ndarray] = []
    inside: list[np.ndarray] = []
    folds = []
    for held in sorted(by_seed):
        train = [t for s in sorted(by_seed) if s != held for t in by_seed[s]]
        test = concat(by_seed[held])
        if setting["columns"] == "old":
            train = [without_queue_columns(t) for t in train]
            test = without_queue_columns(test)
        fit, cal = fit_calibrate(train)
        model = train_two_stage(fit, cal, rounds=setting["rounds"], params=setting["params"],
                                base=setting["base"])
        point, p10, p90 = model.predict_batch(test.matrix)
        h = HeuristicModel().predict_batch(test.matrix)[0]
        errs.append(np.abs(point - test.total_s))
        herrs.append(np.abs(h - test.total_s))
        inside.append((test.total_s >= p10) & (test.total_s <= p90))
        folds.append({"seed": held, "mae_s": round(float(errs[-1].mean()), 2),
                      "heuristic_mae_s": round(float(herrs[-1].mean()), 2)})
    mae, hmae = float(np.concatenate(errs).mean()), float(np.concatenate(herrs).mean())
    return {"mae_s": round(mae, 2), "heuristic_mae_s": round(hmae, 2),
            "improvement": round(1 - mae / hmae, 4),
            "coverage80": round(float(np.concatenate(inside).mean()), 4), "folds": folds,
            "cpu_s": round(time.process_time() - cpu, 1)}


def main() -> None:
    from mdrp import split_of

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    args = ap.parse_args()
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        ap.error(f"--settings: unknown {unknown}; one of {list(SETTINGS)}")
    by_seed: dict[str, list[EtaTable]] = {}
    for d in instance_dirs([args.root]):
        if split_of(d.name) == "tuning":  # seeds 3-4 are never read here
            by_seed.setdefault(d.name[0], []).append(replay_table(d, cache_dir=args.cache))
    results = {}
    for name in names:
        results[name] = cross_validate(by_seed, SETTINGS[name])
        print(json.dumps({"setting": name, **SETTINGS[name], **results[name]}), flush=True)
    best = min(results, key=lambda n: results[n]["mae_s"])
    print(json.dumps({"best": best, "settings": {n: r["mae_s"] for n, r in results.items()},
                      "heuristic_mae_s": results[best]["heuristic_mae_s"],
                      "improvement": results[best]["improvement"],
                      "instances": sum(len(v) for v in by_seed.values())}))


if __name__ == "__main__":
    main()
