"""Location pings ingested per second through the HTTP API: single and batched,
embedded (in-memory live store) and Redis (GEO) profiles, with p99 request latency.

Each courier goes on shift from its main device, then a client thread per courier
sends pings (a slow random walk, client time strictly increasing) to a real
`lastmile serve` on loopback for a bounded time. The last line is
`{"single_per_s": ..., "batch_per_s": ..., "redis_batch_per_s": ..., "p99_ms": ...}`.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
import uuid

import httpx
import redis
import sqlalchemy as sa
from harness import database, engine_url, issue_key, percentile, run_cli, server

REDIS_URL = "redis://127.0.0.1:6379/0"


def _couriers(env: dict[str, str], n: int) -> list[str]:
    run_cli(["seed", "--couriers", str(n), "--merchants", "2", "--consumers", "1"], env)
    engine = sa.create_engine(engine_url(env))
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("select id from couriers order by id"))]
    engine.dispose()
    return [issue_key("courier", c, env) for c in ids]


def _sender(base: str, key: str, batch: int, stop_at: float, seed: int,
            out: list[tuple[int, float]], lock: threading.Lock) -> None:
    rng = random.Random(seed)
    lat, lng, last_ts = 37.44 + rng.uniform(-0.03, 0.03), -122.14 + rng.uniform(-0.03, 0.03), 0.0
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post("/v1/courier/shift/start", json={"device_id": "main", "duration_s": 7200},
                    headers=headers).raise_for_status()
        while time.monotonic() < stop_at:
            pings = []
            for _ in range(batch):
                last_ts = max(last_ts + 0.001, time.time())
                lat += rng.uniform(-2e-5, 2e-5)
                lng += rng.uniform(-2e-5, 2e-5)
                pings.append({"device_id": "main", "lat": lat, "lng": lng, "accuracy_m": 10.0,
                              "client_ts": last_ts, "speed_mps": 4.0})
            t0 = time.perf_counter()
            if batch == 1:
                r = client.post("/v1/courier/location", json=pings[0], headers=headers)
            else:
                r = client.post("/v1/courier/locations", json={"pings": pings}, headers=headers)
            dt_ms = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            with lock:
                out.append((r.json()["accepted"], dt_ms))


def _run(env: dict[str, str], couriers: int, batch: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lastmile-pings-") as tmp:
        env = {**env, "LASTMILE_DATA_DIR": tmp}
        keys = _couriers(env, couriers)
        out: list[tuple[int, float]] = []
        lock = threading.Lock()
        with server(env) as base:
            stop_at = time.monotonic() + seconds
            threads = [threading.Thread(target=_sender, args=(base, k, batch, stop_at, i, out,
                                                              lock)) for i, k in enumerate(keys)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
    latencies = sorted(dt for _, dt in out)
    accepted = sum(a for a, _ in out)
    return {"pings_per_s": round(accepted / wall, 1), "requests": len(out),
            "accepted": accepted, "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99), "batch": batch, "couriers": couriers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="load time per run")
    parser.add_argument("--couriers", type=int, default=8, help="concurrent couriers (threads)")
    parser.add_argument("--batch", type=int, default=50, help="pings per batched request")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp, database("sqlite", tmp) as env:
        results["single"] = _run(env, args.couriers, 1, args.seconds)
        print(json.dumps({"profile": "embedded", **results["single"]}), flush=True)
        results["batch"] = _run(env, args.couriers, args.batch, args.seconds)
        print(json.dumps({"profile": "embedded", **results["batch"]}), flush=True)
        prefix = f"bench:{uuid.uuid4().hex[:8]}:"
        redis_env = {**env, "LASTMILE_REDIS_URL": REDIS_URL, "LASTMILE_REDIS_PREFIX": prefix}
        try:
            results["redis"] = _run(redis_env, args.couriers, args.batch, args.seconds)
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
        print(json.dumps({"profile": "redis", **results["redis"]}), flush=True)
    print(json.dumps({"single_per_s": results["single"]["pings_per_s"],
                      "batch_per_s": results["batch"]["pings_per_s"],
                      "redis_batch_per_s": results["redis"]["pings_per_s"],
                      "p99_ms": results["single"]["p99_ms"]}))


if __name__ == "__main__":
    main()
