"""Open-loop load on a real `lastmile serve`: orders/s and p99 at rising offered load,
batched pings/s, and the server's CPU per order and per ping, for the embedded, scale
and two-process scale profiles.

For each profile a fresh database (SQLite file / PostgreSQL schema) is seeded with many
consumers and merchants, keys are issued, and `lastmile serve` starts on a free port with
the profile's flags (``PROFILES``, the one place they live). Then:

- **orders**, open loop: steps of offered load (``--rates``, orders/s, each for
  ``--step-s`` seconds). Order i of a step is *due* at ``t0 + i / rate`` whether or not
  earlier answers came back; its latency is measured from that due time (so a server
  that falls behind shows it in p99, no coordinated omission). Each order is from a
  random consumer at a merchant chosen with skewed popularity, with its own
  Idempotency-Key; the server's outbox relay delivers the events (drive webhooks,
  notifications) beside the load. The steps stop rising after the first step the server
  did not keep up with (answered < 90 % of offered, or p99 > ``SATURATED_P99_MS``).
- **pings**: couriers on shift upload batches of ``--batch`` pings back to back
  (closed loop, ``--courier-conns`` connections) for ``--pings-s`` seconds.

The client is a small asyncio HTTP/1.1 client on keep-alive connections (request bytes
built by hand), cheap enough that on two cores the server, not the generator, is what
is measured. Server CPU comes from /proc (user + system seconds of the server process
and its children, i.e. every API worker); ``cpu_ms_per_order`` and ``cpu_ms_per_ping``
divide that by the answers of the phase (the orders phase includes the relay's work for
those orders' events, whatever it finished during the phase).

Per profile one JSON line with the whole curve; a PNG of p99 against offered load (path
printed); the last line is ``{"embedded": {...}, "scale": {...}, "scale_2proc": {...}}``
with ``orders_per_s`` (the highest answered rate of a step whose p99 stayed under
``SLO_P99_MS``; the highest answered rate at all when no step did), that step's
``p99_ms``, and ``pings_per_s`` (accepted pings per second).

    .venv/bin/python bench/load.py                       # all three profiles (~3 min)
    .venv/bin/python bench/load.py --profiles embedded   # one
    .venv/bin/python bench/load.py --quick               # CI smoke: tiny steps, ~20 s each
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from harness import (
    Server,
    database,
    percentile,
    seed_city,
)
from harness import server as serve

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NATS_URL = "nats://127.0.0.1:4222"
# The server's command line per profile, in one place.
PROFILES: dict[str, dict[str, Any]] = {
    "embedded": {"db": "sqlite", "scale": False, "args": []},
    "scale": {"db": "postgresql", "scale": True,
              "args": ["--profile", "scale", "--workers", "1"]},
    "scale_2proc": {"db": "postgresql", "scale": True,
                    "args": ["--profile", "scale", "--workers", "2"]},
}
SLO_P99_MS = 100.0  # the target: p99 under 100 ms
SATURATED_P99_MS = 1000.0  # past this a step is saturated: no higher step is offered
POPULARITY_EXPONENT = 0.8  # merchant i gets orders in proportion to 1 / (i + 1) ** 0.8
TIMEOUT_S = 30.0


# --- a minimal keep-alive HTTP/1.1 client --------------------------------------------


class Conn:
    """One keep-alive connection; ``request`` sends prebuilt bytes and returns (status,
    body). Content-Length and chunked bodies (uvicorn sends the former for JSON)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(data)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (ln.partition(b":") for ln in lines[1:] if ln)}
            if b"content-length" in headers:
                body = await self.reader.readexactly(int(headers[b"content-length"]))
            elif headers.get(b"transfer-encoding") == b"chunked":
                body = await self._chunks()
            else:
                body = b""
            if headers.get(b"connection") == b"close":
                self.close()
            return status, body
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.close()
            raise

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(chunk[:-2])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def post(path: str, key: str, body: Any, *, idempotency_key: str | None = None) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    extra = f"Idempotency-Key: {idempotency_key}\r\n" if idempotency_key else ""
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\n{extra}Content-Length: {len(payload)}\r\n\r\n"
            ).encode() + payload


# --- the server and its CPU ----------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the API workers of a multi-process server)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            todo += [int(c) for t in os.listdir(f"/proc/{p}/task")
                     for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except OSError:
            pass
    return found


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (plus what their
    reaped children used)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tick


class PgBackends:
    """CPU of the PostgreSQL backends serving the server's connections (found by the
    ``application_name`` the profile's database URL sets), when PostgreSQL runs on this
    machine. A backend that closes during a step (an overflow connection given back) takes
    its CPU with it: the figure is a lower bound."""

    def __init__(self, env: dict[str, str], app_name: str | None):
        self.app_name = app_name
        self.url = PG_ADMIN_URL if app_name else None

    def pids(self) -> list[int]:
        if self.url is None:
            return []
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return [int(r[0]) for r in conn.execute(sa.text(
                    "select pid from pg_stat_activity where application_name = :n"),
                    {"n": self.app_name})]
        finally:
            engine.dispose()

    def cpu(self) -> dict[int, float]:
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = sum(int(x) for x in fields[11:13]) / tick
        return out

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(v - before.get(pid, 0.0) for pid, v in after.items())


# --- the city ------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class City:
    consumer_keys: list[str]
    merchants: list[tuple[str, str]]  # (merchant id, an item id)
    courier_keys: list[str]


def prepare(env: dict[str, str], *, consumers: int, merchants: int, couriers: int) -> City:
    city = seed_city(env, consumers=consumers, merchants=merchants, couriers=couriers,
                     key_roles=("consumer", "courier"))
    return City(consumer_keys=city.keys["consumer"], courier_keys=city.keys["courier"],
                merchants=list(zip(city.merchant_ids, city.merchant_items, strict=True)))


# --- orders: open-loop steps ---------------------------------------------------------


@dataclass(slots=True)
class Step:
    offered_per_s: float
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    pg_cpu_s: float | None = None

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        wall = max(self.wall_s, 1e-9)
        return {"offered_per_s": self.offered_per_s,
                "answered_per_s": round(len(lat) / wall, 1), "orders": len(lat),
                "p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99),
                "errors": sum(self.errors.values()), "errors_by": self.errors,
                "server_cpu_s": round(self.cpu_s, 3),
                "cpu_ms_per_order": round(1000 * self.cpu_s / len(lat), 3) if lat else None,
                "pg_cpu_ms_per_order": (round(1000 * self.pg_cpu_s / len(lat), 3)
                                        if lat and self.pg_cpu_s is not None else None)}


def _order_request(rng: random.Random, city: City, weights: Sequence[float]) -> bytes:
    merchant, item = rng.choices(city.merchants, weights)[0]
    body = {"merchant_id": merchant, "items": [{"item_id": item, "quantity": 1}],
            "dropoff": {"lat": 37.445 + rng.uniform(-0.02, 0.02),
                        "lng": -122.15 + rng.uniform(-0.02, 0.02)}, "tip_minor": 100}
    return post("/v1/consumer/orders", rng.choice(city.consumer_keys), body,
                idempotency_key=uuid.UUID(int=rng.getrandbits(128)).hex)


async def order_step(server: Server, city: City, rate: float, seconds: float, conns: int,
                     rng: random.Random, pg: PgBackends) -> Step:
    """Offer ``rate`` orders/s for ``seconds`` (open loop) on a pool of ``conns``
    connections; wait for the answers (bounded)."""
    weights = [1.0 / (i + 1) ** POPULARITY_EXPONENT for i in range(len(city.merchants))]
    n = max(1, int(rate * seconds))
    requests = [_order_request(rng, city, weights) for _ in range(n)]
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(Conn("127.0.0.1", server.port))
    step = Step(offered_per_s=rate)
    loop = asyncio.get_running_loop()

    async def one(data: bytes, due: float) -> None:
        conn = await pool.get()
        try:
            status, body = await asyncio.wait_for(conn.request(data), TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            conn.close()
            key = f"transport {type(exc).__name__}"
            step.errors[key] = step.errors.get(key, 0) + 1
            return
        finally:
            pool.put_nowait(conn)
        if status == 201:
            step.latencies.append((loop.time() - due) * 1000)
        else:
            try:
                code = json.loads(body).get("code")
            except (ValueError, AttributeError):
                code = None
            key = f"{status} {code}" if code else str(status)
            step.errors[key] = step.errors.get(key, 0) + 1

    pg0 = pg.cpu()
    cpu0, t0 = cpu_s(server.pid), loop.time()
    tasks = []
    for i, data in enumerate(requests):
        due = t0 + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(data, due)))
    await asyncio.wait(tasks, timeout=TIMEOUT_S)
    step.wall_s = loop.time() - t0
    step.cpu_s = cpu_s(server.pid) - cpu0
    if pg.app_name:
        step.pg_cpu_s = PgBackends.spent(pg0, pg.cpu())
    for c in list(pool._queue):  # noqa: SLF001 - the idle connections, closed at the end
        c.close()
    return step


# --- pings: batched uploads -----------------------------------------------------------


async def pings_phase(server: Server, city: City, *, batch: int, seconds: float,
                      conns: int) -> dict[str, Any]:
    """Couriers on shift upload ``batch`` pings a request, back to back, for ``seconds``."""
    couriers = city.courier_keys[:conns]
    setup = Conn("127.0.0.1", server.port)
    for i, key in enumerate(couriers):
        status, body = await setup.request(post("/v1/courier/shift/start", key,
                                                {"device_id": f"main-{i}", "duration_s": 7200}))
        if status != 200:
            raise RuntimeError(f"shift start refused: {status} {body[:200]!r}")
    setup.close()
    accepted, uploads, errors, latencies = 0, 0, 0, []
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds

    async def courier(i: int, key: str) -> None:
        nonlocal accepted, uploads, errors
        rng = random.Random(i)
        conn = Conn("127.0.0.1", server.port)
        lat, lng, ts = 37.44 + rng.uniform(-0.03, 0.03), -122.14 + rng.uniform(-0.03, 0.03), 0.0
        try:
            while loop.time() < stop_at:
                pings = []
                # A batch spans the last second, or follows the previous one 0.1 ms a ping
                # apart when uploads come faster than that (never in the future).
                base_ts = max(ts + 1e-4, time.time() - 1.0)
                for j in range(batch):
                    lat += rng.uniform(-2e-5, 2e-5)
                    lng += rng.uniform(-2e-5, 2e-5)
                    ts = base_ts + j * 1e-4
                    pings.append({"device_id": f"main-{i}", "lat": lat, "lng": lng,
                                  "accuracy_m": 10.0, "client_ts": ts, "speed_mps": 4.0})
                t0 = loop.time()
                status, body = await asyncio.wait_for(
                    conn.request(post("/v1/courier/locations", key, {"pings": pings})),
                    TIMEOUT_S)
                uploads += 1
                if status == 200:
                    accepted += json.loads(body)["accepted"]
                    latencies.append((loop.time() - t0) * 1000)
                else:
                    errors += 1
                    if errors == 1:
                        print(f"first refused upload: {status} {body[:300]!r}", file=sys.stderr)
        finally:
            conn.close()

    cpu0, t0 = cpu_s(server.pid), loop.time()
    await asyncio.gather(*(courier(i, k) for i, k in enumerate(couriers)))
    wall, cpu = loop.time() - t0, cpu_s(server.pid) - cpu0
    lat = sorted(latencies)
    return {"pings_per_s": round(accepted / wall, 1), "accepted": accepted, "uploads": uploads,
            "upload_errors": errors, "batch": batch, "p99_ms_per_upload": percentile(lat, 0.99),
            "server_cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "cpu_ms_per_ping": round(1000 * cpu / accepted, 4) if accepted else None}


# --- one profile ----------------------------------------------------------------------


def headline(steps: Sequence[dict[str, Any]]) -> tuple[float, float | None]:
    """(orders_per_s, p99_ms): the best answered rate of a step within the SLO, else the
    best answered rate at all, with that step's p99."""
    within = [s for s in steps if s["p99_ms"] is not None and s["p99_ms"] < SLO_P99_MS
              and s["errors"] == 0]
    pool = within or [s for s in steps if s["orders"]] or list(steps)
    best = max(pool, key=lambda s: s["answered_per_s"])
    return best["answered_per_s"], best["p99_ms"]


@contextmanager
def profile_env(profile: str, tmp: str) -> Iterator[dict[str, str]]:
    spec = PROFILES[profile]
    with database(spec["db"], tmp) as env:
        if not spec["scale"]:
            env.pop("LASTMILE_REDIS_URL", None)
            env.pop("LASTMILE_NATS_URL", None)
            yield env
            return
        tag = uuid.uuid4().hex[:8]
        prefix = f"bench:{tag}:"
        # A JetStream stream and subjects of this run's own, like its Redis prefix: two runs
        # at once (the parallel test suite) never share durable consumers.
        env = {**env, "LASTMILE_REDIS_URL": os.environ.get("LASTMILE_REDIS_URL", REDIS_URL),
               "LASTMILE_NATS_URL": os.environ.get("LASTMILE_NATS_URL", NATS_URL),
               "LASTMILE_NATS_STREAM": f"BENCH_{tag}", "LASTMILE_NATS_PREFIX": f"bench{tag}",
               "LASTMILE_REDIS_PREFIX": prefix}
        try:
            yield env
        finally:
            import redis

            client = redis.Redis.from_url(env["LASTMILE_REDIS_URL"])
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
            client.close()


def run_profile(profile: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="lastmile-load-") as tmp, \
            profile_env(profile, tmp) as env:
        city = prepare(env, consumers=args.consumers, merchants=args.merchants,
                       couriers=args.courier_conns)
        app_name = None
        if env.get("LASTMILE_DATABASE_URL"):
            app_name = f"lastmile-load-{uuid.uuid4().hex[:8]}"
            env = {**env, "LASTMILE_DATABASE_URL":
                   f"{env['LASTMILE_DATABASE_URL']}&application_name={app_name}"}
        pg = PgBackends(env, app_name)
        with serve(env, PROFILES[profile]["args"]) as server:
            # What the server burns with no request (relay, senders, housekeeping ticks):
            # the per-order figures below include it, cpu_ms_per_order_net does not.
            cpu0 = cpu_s(server.pid)
            time.sleep(args.idle_s)
            idle_cpu_per_s = (cpu_s(server.pid) - cpu0) / args.idle_s
            steps: list[dict[str, Any]] = []
            for rate in args.rates:
                step = asyncio.run(order_step(server, city, rate, args.step_s, args.conns, rng,
                                              pg))
                steps.append(step.summary())
                net = step.cpu_s - idle_cpu_per_s * step.wall_s
                steps[-1]["cpu_ms_per_order_net"] = (
                    round(1000 * net / len(step.latencies), 3) if step.latencies else None)
                s = steps[-1]
                if (s["answered_per_s"] < 0.9 * rate or s["p99_ms"] is None
                        or s["p99_ms"] > SATURATED_P99_MS):
                    break  # saturated: a higher offered load only queues longer
            time.sleep(args.settle_s)  # let the relay drain before the pings phase
            pings = asyncio.run(pings_phase(server, city, batch=args.batch,
                                            seconds=args.pings_s, conns=args.courier_conns))
    if pings["accepted"]:
        net_s = pings["server_cpu_s"] - idle_cpu_per_s * pings["wall_s"]
        pings["cpu_ms_per_ping_net"] = round(1000 * net_s / pings["accepted"], 4)
    orders_per_s, p99 = headline(steps)
    cpu = [s["cpu_ms_per_order"] for s in steps if s["cpu_ms_per_order"] is not None]
    net = [s["cpu_ms_per_order_net"] for s in steps if s["cpu_ms_per_order_net"] is not None]
    pg_ms = [s["pg_cpu_ms_per_order"] for s in steps if s["pg_cpu_ms_per_order"] is not None]
    return {"profile": profile, "orders_per_s": orders_per_s, "p99_ms": p99,
            "pings_per_s": pings["pings_per_s"],
            "cpu_ms_per_order": min(cpu) if cpu else None,
            "cpu_ms_per_order_net": min(net) if net else None,
            "idle_cpu_s_per_s": round(idle_cpu_per_s, 4),
            "pg_cpu_ms_per_order": min(pg_ms) if pg_ms else None,
            "cpu_ms_per_ping": pings["cpu_ms_per_ping"],
            "cpu_ms_per_ping_net": pings.get("cpu_ms_per_ping_net"), "steps": steps,
            "pings": pings}


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in results.items():
        pts = [(s["offered_per_s"], s["p99_ms"]) for s in r["steps"] if s["p99_ms"] is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=name)
    ax.axhline(SLO_P99_MS, color="grey", linestyle="--", label=f"target p99 {SLO_P99_MS:.0f} ms")
    ax.set_xlabel("offered load (orders/s)")
    ax.set_ylabel("p99 latency (ms, from the due time)")
    ax.set_yscale("log")
    ax.set_title("POST /v1/consumer/orders: p99 against offered load")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", choices=list(PROFILES), default=list(PROFILES))
    parser.add_argument("--rates", type=float, nargs="+",
                        default=[25, 50, 100, 200, 300, 400, 500, 700],
                        help="offered orders/s, one step each, rising")
    parser.add_argument("--step-s", type=float, default=8.0, help="seconds per step")
    parser.add_argument("--conns", type=int, default=64, help="connections for the orders")
    parser.add_argument("--consumers", type=int, default=400)
    parser.add_argument("--merchants", type=int, default=60)
    parser.add_argument("--courier-conns", type=int, default=8,
                        help="couriers uploading pings at once (one connection each)")
    parser.add_argument("--batch", type=int, default=50, help="pings per upload")
    parser.add_argument("--pings-s", type=float, default=8.0, help="seconds of pings")
    parser.add_argument("--settle-s", type=float, default=2.0)
    parser.add_argument("--idle-s", type=float, default=3.0,
                        help="seconds of no load first, to measure the server's idle CPU")
    parser.add_argument("--plot", type=Path, default=None, help="PNG path (default: a temp file)")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke: 2 small steps of 2 s, 1 s of pings, a small city")
    args = parser.parse_args()
    if args.quick:
        args.rates, args.step_s, args.pings_s, args.settle_s = [10.0, 20.0], 2.0, 1.0, 0.5
        args.idle_s = 1.0
        args.consumers, args.merchants, args.courier_conns, args.conns = 20, 6, 2, 8
    results = {}
    for profile in args.profiles:
        results[profile] = run_profile(profile, args)
        print(json.dumps(results[profile]), flush=True)
    path = args.plot or Path(tempfile.gettempdir()) / f"lastmile-load-{uuid.uuid4().hex[:6]}.png"
    plot(results, path)
    print(f"plot: {path}", flush=True)
    print(json.dumps({name: {k: r[k] for k in ("orders_per_s", "pings_per_s", "p99_ms")}
                      for name, r in results.items()}))


if __name__ == "__main__":
    main()
