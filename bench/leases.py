"""Region leases, two mechanisms measured: PostgreSQL lease table vs NATS JetStream KV.

PostgreSQL: the product's lease (``app.leases``): one row per region, claim/renew as a
compare-and-set on the fencing token. NATS: a KV bucket with a TTL (``max_age``); claim is
``create`` (fails while the key exists), renew is ``update`` at the last revision, and the
fencing token is the entry's revision (it grows with every write to the bucket).

For each: median and p99 latency of acquire (claim of a free lease) and renew, and takeover
time after the holder dies (stops renewing without releasing, as kill -9): the time until a
second worker polling every ``poll_s`` holds the lease. Wall latencies on a shared 2-core
machine are indicative only; the CPU seconds of this process are reported too.

    PYTHONPATH=src python bench/leases.py [--n 200] [--ttl 2]

Prints one JSON object {"postgres": {...}, "nats_kv": {...}}; a server that does not answer
gets {"skipped": reason}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

import sqlalchemy as sa

from lastmile.adapters.clock import SystemClock, UuidIds
from lastmile.adapters.db.engine import make_engine, migrate
from lastmile.adapters.db.uow import SqlUnitOfWorkFactory
from lastmile.app import leases
from lastmile.app.context import Services
from lastmile.app.leases import Fence

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NATS_URL = "nats://127.0.0.1:4222"


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {"median_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(p99 * 1000, 3)}


def bench_postgres(n: int, ttl_s: float, poll_s: float) -> dict[str, object]:
    schema = f"bench_leases_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    engine = make_engine(f"{PG_URL}?options=-csearch_path%3D{schema}", pool_size=4)
    try:
        migrate(engine)
        services = Services(uow=SqlUnitOfWorkFactory(engine), clock=SystemClock(),
                            ids=UuidIds())
        cpu0 = time.process_time()
        acquire, renew = [], []
        for i in range(n):
            t0 = time.perf_counter()
            lease = leases.claim(services, f"reg_{i}", "a", ttl_s)
            acquire.append(time.perf_counter() - t0)
            assert lease is not None
            fence = Fence(name=lease.name, owner="a", token=lease.token)
            t0 = time.perf_counter()
            assert leases.renew(services, fence, ttl_s) is not None
            renew.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu0
        # Takeover: "a" holds reg_0 and dies (never renews); "b" polls.
        assert leases.claim(services, "reg_0", "a", ttl_s) is not None
        died = time.perf_counter()
        while leases.claim(services, "reg_0", "b", ttl_s) is None:
            time.sleep(poll_s)
        takeover = time.perf_counter() - died
        return {"acquire": _summary(acquire), "renew": _summary(renew),
                "takeover_s": round(takeover, 3), "cpu_ms_per_op": round(cpu / (2 * n) * 1000, 3),
                "fencing": "token in the lease row, checked in the writing transaction"}
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
        admin.dispose()


async def _bench_nats(n: int, ttl_s: float, poll_s: float) -> dict[str, object]:
    import nats
    from nats.js.api import KeyValueConfig
    from nats.js.errors import KeyWrongLastSequenceError

    nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
    js = nc.jetstream()
    bucket = f"bench_leases_{uuid.uuid4().hex[:8]}"
    kv = await js.create_key_value(KeyValueConfig(bucket=bucket, ttl=ttl_s, history=1))
    try:
        cpu0 = time.process_time()
        acquire, renew = [], []
        for i in range(n):
            t0 = time.perf_counter()
            rev = await kv.create(f"reg_{i}", b"a")
            acquire.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await kv.update(f"reg_{i}", b"a", last=rev)
            renew.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu0
        await kv.purge("reg_0")
        await kv.create("reg_0", b"a")
        died = time.perf_counter()
        while True:
            try:
                await kv.create("reg_0", b"b")
                break
            except KeyWrongLastSequenceError:
                await asyncio.sleep(poll_s)
            except Exception as exc:  # the key still exists: not yet expired
                if "wrong last sequence" not in str(exc).lower():
                    raise
                await asyncio.sleep(poll_s)
        takeover = time.perf_counter() - died
        return {"acquire": _summary(acquire), "renew": _summary(renew),
                "takeover_s": round(takeover, 3), "cpu_ms_per_op": round(cpu / (2 * n) * 1000, 3),
                "fencing": "KV revision; cannot be checked inside a PostgreSQL transaction"}
    finally:
        await js.delete_key_value(bucket)
        await nc.close()


def bench_nats(n: int, ttl_s: float, poll_s: float) -> dict[str, object]:
    return asyncio.run(_bench_nats(n, ttl_s, poll_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="leases acquired and renewed")
    parser.add_argument("--ttl", type=float, default=2.0, help="lease TTL in seconds")
    parser.add_argument("--poll", type=float, default=0.1, help="takeover poll interval (s)")
    args = parser.parse_args()
    out: dict[str, object] = {"n": args.n, "ttl_s": args.ttl, "poll_s": args.poll}
    for name, run in (("postgres", bench_postgres), ("nats_kv", bench_nats)):
        try:
            out[name] = run(args.n, args.ttl, args.poll)
        except (OSError, sa.exc.OperationalError, TimeoutError) as exc:
            out[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
