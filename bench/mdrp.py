"""MDRP benchmark: every instance in ../shared/mdrp, greedy vs optimised.

Instances: Reyes et al. (2018), "The Meal Delivery Routing Problem"; public
repository grubhub/mdrplib. Prints one JSON line per instance and, last, one
JSON summary (order-weighted means over all instances; ``greedy`` holds the
same keys for the baseline; ``tuning`` and ``validation`` hold the same keys over
the tuning seeds 0-2 and the held-out validation seeds 3-4 (the leading digit of
an instance name is its seed, ``split_of``); ``policy_tuned_on`` says which
instances the policy defaults were tuned on: figures over those are in-sample).
Writes bench/out/mdrp_excess.png.

    .venv/bin/python bench/mdrp.py --jobs 2 [--instances '0o*'] [--limit 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from lastmile.sim.mdrp.runner import policy_named, run_instance  # noqa: E402

DEFAULT_ROOT = REPO.parent / "shared" / "mdrp"
OUT = REPO / "bench" / "out"
# docs/dispatch.md "Tuning and validation": the DispatchPolicy defaults were chosen on the
# seeds 0-2 only (figures over those are in-sample); seeds 3-4 are held out for validation.
TUNING_SEEDS = frozenset("012")
VALIDATION_SEEDS = frozenset("34")
TUNED_ON = (
    "the 72 instances of seeds 0-2 of ../shared/mdrp (grubhub/mdrplib); "
    "seeds 3-4 (48 instances) are held out as validation"
)
KEYS = ("c2d_mean", "floor_mean", "r2p_mean", "utilisation", "cost_per_order")


def split_of(instance: str) -> str:
    """``"tuning"`` (seeds 0-2) or ``"validation"`` (seeds 3-4) for an instance name such as
    ``3o50t75s1p125`` (its leading digit is the mdrplib seed); raises ValueError otherwise."""
    seed = instance[:1]
    if len(instance) > 1 and seed in TUNING_SEEDS:
        return "tuning"
    if len(instance) > 1 and seed in VALIDATION_SEEDS:
        return "validation"
    raise ValueError(f"instance name must start with a seed 0-4 (got {instance!r})")


def _one(args: tuple[str, str]) -> dict[str, Any]:
    instance_dir, policy = args
    with tempfile.TemporaryDirectory() as tmp:
        o = run_instance(Path(instance_dir), Path(tmp), policy=policy_named(policy))
    m = o.metrics
    bundle = m["orders_per_bundle"]
    return {
        "instance": o.instance,
        "policy": policy,
        "orders": m["orders"],
        "delivered": m["orders_delivered"],
        "undelivered_share": m["undelivered_share"],
        **{k: m[k] for k in KEYS},
        "c2d_excess": m["c2d_excess"],
        "orders_per_bundle": bundle["mean"] if isinstance(bundle, dict) else None,
        "bundles": bundle["n"] if isinstance(bundle, dict) else 0,
        "feasible": not o.violations,
        "violations": len(o.violations),
        "wall_s": round(o.wall_s, 3),
        "total_pay": m["total_courier_compensation"],
    }


def summarise(rows: list[dict[str, Any]], wall_s: float) -> dict[str, object]:
    """Order-weighted means over instances (undelivered over all orders)."""
    orders = sum(int(r["orders"]) for r in rows)
    delivered = sum(int(r["delivered"]) for r in rows)

    def wmean(key: str) -> float | None:
        pairs = [(float(r[key]), int(r["delivered"])) for r in rows if r[key] is not None]
        w = sum(n for _, n in pairs)
        return sum(v * n for v, n in pairs) / w if w else None

    c2d, floor = wmean("c2d_mean"), wmean("floor_mean")
    bundles = sum(int(r["bundles"]) for r in rows)
    pay = sum(float(r["total_pay"]) for r in rows)
    feasible = sum(bool(r["feasible"]) for r in rows)
    return {
        "instances": len(rows),
        "feasible": feasible,
        "all_feasible": feasible == len(rows),
        "orders": orders,
        "undelivered_share": (orders - delivered) / orders if orders else 0.0,
        "c2d_mean": c2d,
        "floor_mean": floor,
        "c2d_excess": (c2d - floor) if c2d is not None and floor is not None else None,
        "r2p_mean": wmean("r2p_mean"),
        "orders_per_bundle": delivered / bundles if bundles else None,
        "utilisation": wmean("utilisation"),
        "cost_per_order": pay / delivered if delivered else None,
        "max_instance_wall_s": max((float(r["wall_s"]) for r in rows), default=0.0),
        "wall_s": round(wall_s, 2),
    }


def final_summary(rows: list[dict[str, Any]], wall_s: float) -> dict[str, object]:
    """The last line: the optimised policy's summary over every run instance, the greedy one
    under ``greedy``, the optimised one over the tuning seeds under ``tuning`` and over the
    held-out seeds under ``validation``, and which instances the policy defaults were tuned on
    (figures over those are in-sample)."""
    optimised = [r for r in rows if r["policy"] == "optimised"]
    summary = summarise(optimised, wall_s)
    summary["greedy"] = summarise([r for r in rows if r["policy"] == "greedy"], wall_s)
    for part in ("tuning", "validation"):
        summary[part] = summarise([r for r in optimised if split_of(str(r["instance"])) == part],
                                  wall_s)
    summary["policy_tuned_on"] = TUNED_ON
    return summary


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({str(r["instance"]) for r in rows})
    by = {(r["instance"], r["policy"]): r["c2d_excess"] for r in rows}
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 0.12), 4.5))
    for policy, marker in (("greedy", "x"), ("optimised", "o")):
        ax.plot(range(len(names)), [by.get((n, policy)) for n in names], marker, ms=3, label=policy)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=5)
    ax.set_ylabel("click-to-door minus floor (min)")
    ax.set_title("MDRP excess click-to-door per instance (Reyes et al. 2018, grubhub/mdrplib)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--instances", default="*", help="glob of instance names")
    ap.add_argument("--limit", type=int, default=0, help="first N instances only")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--policies", default="optimised,greedy",
                    help="comma-separated policies to run (default both)")
    args = ap.parse_args()
    dirs = sorted(d for d in args.root.glob(args.instances) if (d / "orders.txt").is_file())
    if not dirs:  # an empty summary would read as a result
        ap.error(f"no MDRP instance matches {args.instances!r} under {args.root} "
                 "(each is a folder with orders.txt; pass --root)")
    if args.limit:
        dirs = dirs[: args.limit]
    started = time.perf_counter()
    tasks = [(str(d), p) for d in dirs for p in args.policies.split(",")]
    with Pool(max(1, args.jobs)) as pool:
        rows = []
        for row in pool.imap(_one, tasks):
            rows.append(row)
            print(json.dumps(row), flush=True)
    wall = time.perf_counter() - started
    plot(rows, OUT / "mdrp_excess.png")
    print(json.dumps({**final_summary(rows, wall), "plot": str(OUT / "mdrp_excess.png")}))


if __name__ == "__main__":
    main()
