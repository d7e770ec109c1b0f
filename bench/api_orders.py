"""Orders placed per second through the HTTP API, on SQLite and on PostgreSQL.

Starts `lastmile serve` as a real server process on loopback for each database,
seeds the demo city, then N client threads place orders (each with its own
Idempotency-Key) for a bounded time. Prints one JSON line per database and, last,
`{"sqlite": {...}, "postgresql": {...}}` with orders_per_s, p50_ms, p99_ms.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid

import httpx
import sqlalchemy as sa
from harness import database, engine_url, issue_key, percentile, run_cli, server


def _prepare(env: dict[str, str], consumers: int) -> tuple[list[str], str, str]:
    run_cli(["seed", "--consumers", str(consumers), "--merchants", "24", "--couriers", "10"], env)
    engine = sa.create_engine(engine_url(env))
    with engine.connect() as conn:
        consumer_ids = [r[0] for r in conn.execute(sa.text("select id from consumers order by id"))]
        merchant, menu = conn.execute(sa.text("select id, menu from merchants order by id")).first()
    engine.dispose()
    item = (json.loads(menu) if isinstance(menu, str) else menu)[0]["id"]
    return [issue_key("consumer", c, env) for c in consumer_ids], merchant, item


def _load(base: str, keys: list[str], merchant: str, item: str, seconds: float,
          max_orders: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    body = {"merchant_id": merchant, "items": [{"item_id": item, "quantity": 1}],
            "dropoff": {"lat": 37.445, "lng": -122.15}, "tip_minor": 100}

    def worker(key: str) -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < stop_at:
                with lock:
                    if len(latencies) + errors >= max_orders:
                        return
                t0 = time.perf_counter()
                r = client.post("/v1/consumer/orders", json=body, headers={
                    "Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex})
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    if r.status_code == 201:
                        latencies.append(dt)
                    else:
                        errors += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in keys]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {"orders_per_s": round(len(latencies) / wall, 1), "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99), "orders": len(latencies), "errors": errors,
            "clients": len(keys), "wall_s": round(wall, 2)}


def bench(db: str, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lastmile-bench-") as tmp, database(db, tmp) as env:
        keys, merchant, item = _prepare(env, args.clients)
        with server(env) as base:
            return _load(base, keys, merchant, item, args.seconds, args.max_orders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per database")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--max-orders", type=int, default=5000, help="stop after this many")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    result = {}
    for db in dbs:
        result[db] = bench(db, args)
        print(json.dumps({"db": db, **result[db]}), flush=True)
    print(json.dumps({db: {k: result[db][k] for k in ("orders_per_s", "p50_ms", "p99_ms")}
                      for db in dbs}))


if __name__ == "__main__":
    main()
