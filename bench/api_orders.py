"""Orders placed per second through the HTTP API, on SQLite and on PostgreSQL.

Starts `lastmile serve` as a real server process on loopback for each database,
seeds the demo city, then N client threads place orders (each with its own
Idempotency-Key) for a bounded time. Prints one JSON line per database and, last,
`{"sqlite": {...}, "postgresql": {...}}` with orders_per_s, p50_ms, p99_ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
LASTMILE = [sys.executable, "-m", "lastmile.cli"]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(LASTMILE + args, env=env, check=True, capture_output=True, text=True)
    return out.stdout


def _prepare(env: dict[str, str], consumers: int) -> tuple[list[str], str, str]:
    _run(["seed", "--consumers", str(consumers), "--merchants", "24", "--couriers", "10"], env)
    engine = sa.create_engine(_engine_url(env))
    with engine.connect() as conn:
        consumer_ids = [r[0] for r in conn.execute(sa.text("select id from consumers order by id"))]
        merchant, menu = conn.execute(sa.text("select id, menu from merchants order by id")).first()
    engine.dispose()
    item = (json.loads(menu) if isinstance(menu, str) else menu)[0]["id"]
    keys = [_run(["keys", "issue", "--role", "consumer", "--id", c], env).strip().splitlines()[-1]
            for c in consumer_ids]
    return keys, merchant, item


def _engine_url(env: dict[str, str]) -> str:
    url = env.get("LASTMILE_DATABASE_URL")
    return url if url else f"sqlite:///{env['LASTMILE_DATA_DIR']}/lastmile.sqlite"


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(LASTMILE + ["serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def _load(port: int, keys: list[str], merchant: str, item: str, seconds: float,
          max_orders: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    body = {"merchant_id": merchant, "items": [{"item_id": item, "quantity": 1}],
            "dropoff": {"lat": 37.445, "lng": -122.15}, "tip_minor": 100}

    def worker(key: str) -> None:
        nonlocal errors
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
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

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {"orders_per_s": round(len(latencies) / wall, 1), "p50_ms": pct(0.50),
            "p99_ms": pct(0.99), "orders": len(latencies), "errors": errors,
            "clients": len(keys), "wall_s": round(wall, 2)}


def bench(db: str, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    schema = None
    with tempfile.TemporaryDirectory(prefix="lastmile-bench-") as tmp:
        env["LASTMILE_DATA_DIR"] = tmp
        if db == "postgresql":
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(sa.text(f"create schema {schema}"))
            env["LASTMILE_DATABASE_URL"] = f"{PG_URL}?options=-csearch_path%3D{schema}"
        try:
            keys, merchant, item = _prepare(env, args.clients)
            port = _free_port()
            server = _serve(env, port)
            try:
                return _load(port, keys, merchant, item, args.seconds, args.max_orders)
            finally:
                server.terminate()
                server.wait(timeout=10)
        finally:
            if schema:
                with admin.begin() as conn:
                    conn.execute(sa.text(f"drop schema {schema} cascade"))
                admin.dispose()


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
