"""What ``heuristic-3`` adds to a quote: CPU per ``ordering.issue_quote``, with and without.

Sets up a region as ``bench/pricing.py`` does (``--couriers`` couriers idle in the live
store, here also on shift, ``--orders`` orders placed and waiting for a courier), then times ``issue_quote``
for random baskets under the policy's ``eta_queue`` False (``heuristic-2``) and True
(``heuristic-3``: the queue read and played, ``app.eta_queue``), alternating in blocks so
machine load hits both alike. Prints one JSON line per size, the CPU milliseconds per quote
(median of the blocks) and the difference.

    nice -n 5 python bench/eta_queue_cost.py [--sizes 12:10 250:60 --quotes 300]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pricing import _basket, menus, setup  # noqa: E402

from lastmile.app import fulfilment, ordering  # noqa: E402
from lastmile.core.geo import Point  # noqa: E402
from lastmile.core.orders import Actor, ActorKind  # noqa: E402
from lastmile.sim.seed import random_point  # noqa: E402


def cpu_ms_per_quote(container: object, seed: object, menu: object, *, queue: bool,
                     quotes: int, rng: random.Random) -> float:
    services = container.services  # type: ignore[attr-defined]
    services = replace(services, pricing=replace(services.pricing, eta_queue=queue))
    baskets = []
    for _ in range(quotes):
        dropoff: Point = random_point(rng)
        baskets.append(_basket(menu, seed, rng, dropoff))  # type: ignore[arg-type]
    t0 = time.process_time()
    for b in baskets:
        ordering.issue_quote(services, b)
    return (time.process_time() - t0) * 1000 / quotes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["12:10", "250:60"],
                    help="COURIERS:WAITING_ORDERS pairs")
    ap.add_argument("--quotes", type=int, default=300, help="quotes per block")
    ap.add_argument("--blocks", type=int, default=5)
    args = ap.parse_args()
    for size in args.sizes:
        couriers, orders = (int(x) for x in size.split(":"))
        with tempfile.TemporaryDirectory() as tmp:
            container, _clock, seed = setup(argparse.Namespace(couriers=couriers, orders=orders),
                                            Path(tmp))
            try:
                for cid in seed.courier_ids:  # on shift (idle, live in the store)
                    fulfilment.start_shift(container.services, cid, device_id=f"d-{cid}",
                                           ends_at=_clock.now() + 8 * 3600,
                                           actor=Actor(kind=ActorKind.COURIER, id=cid))
                menu = menus(container.services, seed)
                rng = random.Random(3)
                cpu_ms_per_quote(container, seed, menu, queue=True, quotes=20, rng=rng)
                h2, h3 = [], []
                for _ in range(args.blocks):
                    h2.append(cpu_ms_per_quote(container, seed, menu, queue=False,
                                               quotes=args.quotes, rng=rng))
                    h3.append(cpu_ms_per_quote(container, seed, menu, queue=True,
                                               quotes=args.quotes, rng=rng))
            finally:
                container.close()
        a, b = statistics.median(h2), statistics.median(h3)
        print(json.dumps({"couriers": couriers, "waiting_orders": orders,
                          "quote_cpu_ms_heuristic2": round(a, 3),
                          "quote_cpu_ms_heuristic3": round(b, 3),
                          "added_cpu_ms": round(b - a, 3), "blocks": args.blocks,
                          "quotes_per_block": args.quotes}))


if __name__ == "__main__":
    main()
