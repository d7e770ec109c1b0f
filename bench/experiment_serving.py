"""Experiment serving bench: what a running experiment costs the levers that read it.

On a seeded SQLite city (the demo region, ``--consumers`` consumers), CPU time (one
process, ``time.process_time``) per call of:

- ``assign_us``: the pure assignment (``core.experiments.assignment.assign``: one SHA-256);
- ``variant_us``: ``app.experiments.variant`` with the running set cached and the unit's
  exposure already recorded (the steady state of a lever);
- ``quote_ms``: ``ordering.get_quote`` (the quote use case) with no experiment
  (``none``), with a running fees A/B on consumers none of whom was exposed yet (``first``:
  each quote writes one exposure in its own unit of work) and again once all were
  (``repeat``: the process remembers them, nothing is written).

    .venv/bin/python bench/experiment_serving.py            # 400 consumers, 3 passes
    .venv/bin/python bench/experiment_serving.py --quick    # 60 consumers, 1 pass

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lastmile.adapters.clock import ManualClock, SequentialIds  # noqa: E402
from lastmile.app import experiments, ordering, queries  # noqa: E402
from lastmile.app.experiments import NewExperiment  # noqa: E402
from lastmile.bootstrap import build  # noqa: E402
from lastmile.core.experiments.assignment import Variant, assign  # noqa: E402
from lastmile.core.experiments.definition import Context  # noqa: E402
from lastmile.settings import Settings  # noqa: E402
from lastmile.sim.seed import random_point, seed_demo  # noqa: E402

ARMS = (Variant(name="control"),
        Variant(name="treatment", params=(("base_delivery_fee_minor", 299),)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consumers", type=int, default=400)
    ap.add_argument("--passes", type=int, default=3, help="medians over this many passes")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.consumers, args.passes = 60, 1
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(args, Path(tmp))))


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, object]:
    clock = ManualClock()
    container = build(Settings(data_dir=data_dir), clock=clock, ids=SequentialIds(),
                      rng=random.Random(1))
    try:
        svc = container.services
        seed = seed_demo(svc, seed=11, merchants=8, consumers=args.consumers, couriers=10)
        rng = random.Random(5)
        merchant = queries.get_merchant(svc, seed.merchant_ids[0])
        requests = [ordering.OrderRequest(
            consumer_id=c, merchant_id=merchant.id,
            lines=(ordering.LineRequest(item_id=merchant.menu[0].id, quantity=1),),
            dropoff=random_point(rng)) for c in seed.consumer_ids]

        def quotes() -> float:
            start = time.process_time()
            for r in requests:
                ordering.get_quote(svc, r)
            return (time.process_time() - start) / len(requests) * 1e3

        none = [quotes() for _ in range(args.passes)]
        first, repeat = [], []
        for i in range(args.passes):
            exp = experiments.create(svc, NewExperiment(
                name=f"fee-{i}", lever="fees", design="ab", variants=ARMS))
            experiments.start(svc, exp.id)
            first.append(quotes())
            repeat.append(quotes())
            experiments.stop(svc, exp.id)
        exp = experiments.create(svc, NewExperiment(name="probe", lever="other", design="ab",
                                                    variants=ARMS))
        experiments.start(svc, exp.id)
        ctx = Context(at_s=clock.now())
        units = [f"con_{i}" for i in range(2_000)]
        for u in units:  # record every exposure once
            experiments.variant(svc, "probe", u, ctx)
        start = time.process_time()
        for u in units:
            experiments.variant(svc, "probe", u, ctx)
        variant_us = (time.process_time() - start) / len(units) * 1e6
        start = time.process_time()
        for _ in range(10):
            for u in units:
                assign("salt", u, ARMS)
        assign_us = (time.process_time() - start) / (10 * len(units)) * 1e6
    finally:
        container.close()
    return {"consumers": args.consumers, "passes": args.passes,
            "assign_us": round(assign_us, 2), "variant_us": round(variant_us, 2),
            "quote_ms": {"none": round(statistics.median(none), 3),
                         "first": round(statistics.median(first), 3),
                         "repeat": round(statistics.median(repeat), 3)},
            "statistic": "median cpu per call"}


if __name__ == "__main__":
    main()
