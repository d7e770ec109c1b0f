"""MDRP policy sweep on the tuning seeds (0-2) only: a cheap harness for choosing defaults.

Runs a grid of ``DispatchPolicy`` overrides over a subset of the tuning instances
(simulate + metrics; no solution files, no feasibility check: ``bench/mdrp.py`` checks
the final policy) and prints one JSON line per policy, order-weighted as in
``bench/mdrp.py``. It refuses validation instances (seeds 3-4): those are judged once,
on the final policy, by ``bench/mdrp.py``. A progress bar goes to stderr. ``--rows FILE``
also writes every instance's row with its policy (JSON lines), to compare two policies
instance by instance.

    nice -n 10 .venv/bin/python bench/mdrp_sweep.py --jobs 2 --every 3 \\
        --grid '[{}, {"commit_slack_s": 240}, {"idle_weight": 0.3}]'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from multiprocessing import Pool
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from mdrp import split_of  # noqa: E402

from lastmile.core.dispatch import DispatchPolicy  # noqa: E402
from lastmile.sim.mdrp.instance import load_instance  # noqa: E402
from lastmile.sim.mdrp.metrics import compute_metrics  # noqa: E402
from lastmile.sim.mdrp.simulation import simulate  # noqa: E402

DEFAULT_ROOT = Path("/work/shared/mdrp") if Path("/work/shared/mdrp").is_dir() else (
    REPO.parent / "shared" / "mdrp"
)


def tuning_dirs(root: Path, pattern: str, every: int) -> list[Path]:
    """Tuning instances (seeds 0-2) matching ``pattern``, every ``every``-th by name."""
    dirs = sorted(d for d in root.glob(pattern) if (d / "orders.txt").is_file())
    return [d for d in dirs if split_of(d.name) == "tuning"][::max(1, every)]


def _one(args: tuple[int, str, dict[str, Any]]) -> dict[str, Any]:
    k, instance_dir, overrides = args
    policy = replace(DispatchPolicy(), **overrides)
    m = compute_metrics(simulate(load_instance(Path(instance_dir)), policy))
    bundle = m["orders_per_bundle"]
    return {
        "k": k,
        "instance": m["instance"],
        "orders": m["orders"],
        "delivered": m["orders_delivered"],
        "c2d_mean": m["c2d_mean"],
        "floor_mean": m["floor_mean"],
        "r2p_mean": m["r2p_mean"],
        "bundles": bundle["n"] if isinstance(bundle, dict) else 0,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    orders = sum(r["orders"] for r in rows)
    delivered = sum(r["delivered"] for r in rows)

    def wmean(key: str) -> float:
        return sum(r[key] * r["delivered"] for r in rows if r[key] is not None) / max(1, delivered)

    return {
        "instances": len(rows),
        "undelivered_share": round((orders - delivered) / max(1, orders), 5),
        "c2d_excess": round(wmean("c2d_mean") - wmean("floor_mean"), 4),
        "r2p_mean": round(wmean("r2p_mean"), 4),
        "orders_per_bundle": round(delivered / max(1, sum(r["bundles"] for r in rows)), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--instances", default="*", help="glob of instance names (tuning seeds only)")
    ap.add_argument("--every", type=int, default=1, help="every N-th tuning instance by name")
    ap.add_argument("--grid", required=True, help="JSON list of DispatchPolicy overrides")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rows", type=Path, default=None,
                    help="also write every instance's row (JSON lines, with its policy) here, "
                         "for paired comparisons of policies instance by instance")
    args = ap.parse_args()
    grid: list[dict[str, Any]] = json.loads(args.grid)
    for g in grid:
        replace(DispatchPolicy(), **g)  # fail fast on a bad knob
    dirs = tuning_dirs(args.root, args.instances, args.every)
    tasks = [(k, str(d), g) for k, g in enumerate(grid) for d in dirs]
    started = time.perf_counter()
    rows: dict[int, list[dict[str, Any]]] = {k: [] for k in range(len(grid))}
    out = args.rows.open("w") if args.rows is not None else None
    with Pool(max(1, args.jobs)) as pool:
        for n, row in enumerate(pool.imap_unordered(_one, tasks), 1):
            rows[row["k"]].append(row)
            if out is not None:
                out.write(json.dumps({"policy": grid[row["k"]], **row}) + "\n")
                out.flush()
            done = int(30 * n / len(tasks))
            sys.stderr.write(f"\r[{'#' * done}{'.' * (30 - done)}] {n}/{len(tasks)} "
                             f"{time.perf_counter() - started:.0f}s")
            sys.stderr.flush()
            if len(rows[row["k"]]) == len(dirs):
                k = row["k"]
                print(json.dumps({"policy": grid[k], **summarise(rows[k])}), flush=True)
    sys.stderr.write("\n")
    if out is not None:
        out.close()


if __name__ == "__main__":
    main()
