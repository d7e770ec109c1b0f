"""A Super Bowl (x50) surge against a real `lastmile serve`: browse is shed, orders go on.

Seeds a demo city on SQLite, then runs three bounded phases, each against a
fresh `lastmile serve` on a free loopback port (the server stops with its phase):

- ``baseline``: no shedding, order placers plus the normal browse traffic
  (``--browse-clients / 50`` threads, at least one);
- ``surge_unshed``: the same placers, browse x50 (``--browse-clients`` threads),
  admission ceilings so high nothing is shed: what the surge does today;
- ``surge_shed``: the same surge with the overload guard's default-style ceilings
  (``--shed-browse``, ``--shed-normal``; critical keeps its hard ceiling).

Browse clients fetch nearby merchants, a menu and a quote in turn, back to back; a
429 makes them wait ``min(Retry-After, --backoff-cap)`` (impatient apps: they come
back sooner than told, which keeps the pressure on). Per-client rate limits are
off here (``LASTMILE_RATE_LIMIT_*=""``) so the figures show admission control alone.

Prints one JSON line per phase, then one object: per class offered, admitted,
shed, errors, p50/p99 (ms) of admitted requests; the order placement p99 with and
without shedding; and the server's CPU seconds per phase (from /proc, since
wall-clock throughput on a shared 2-core machine means little).

    .venv/bin/python bench/overload.py             # 8 s per phase
    .venv/bin/python bench/overload.py --quick     # 3 s per phase, fewer clients
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import database, percentile, server

NEAR = {"lat": 37.445, "lng": -122.15}
PING_EVERY_S = 0.1  # far faster than a real courier app: enough samples in a short phase
UNSHED = {"LASTMILE_SHED_BROWSE_INFLIGHT": "100000", "LASTMILE_SHED_NORMAL_INFLIGHT": "100000",
          "LASTMILE_SHED_CRITICAL_INFLIGHT": "100000"}
NO_RATE_LIMITS = {"LASTMILE_RATE_LIMIT_CRITICAL": "", "LASTMILE_RATE_LIMIT_NORMAL": "",
                  "LASTMILE_RATE_LIMIT_BROWSE": ""}  # harness.database sets these too


@dataclass(frozen=True, slots=True, kw_only=True)
class City:
    consumer_keys: list[str]
    merchants: list[tuple[str, str]]  # (merchant id, an item id)
    courier_keys: list[str]


@dataclass(slots=True)
class ClassTally:
    offered: int = 0
    shed: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, ms: float) -> None:
        with self.lock:
            self.offered += 1
            if status == 429:
                self.shed += 1
            elif status >= 400:
                self.errors += 1
            else:
                self.latencies_ms.append(ms)

    def summary(self) -> dict[str, Any]:
        with self.lock:
            lat = sorted(self.latencies_ms)
        return {"offered": self.offered, "admitted": len(lat), "shed": self.shed,
                "errors": self.errors, "p50_ms": percentile(lat, 0.50),
                "p99_ms": percentile(lat, 0.99)}


def prepare(env: dict[str, str], consumers: int, couriers: int) -> City:
    """Seed the demo city and issue consumer keys, in this process (one migration, no CLI
    start-up: on a busy machine a CLI process costs seconds)."""
    from lastmile.app.auth import issue_api_key
    from lastmile.bootstrap import build
    from lastmile.settings import Settings
    from lastmile.sim.seed import seed_demo

    container = build(Settings.from_env(env))
    try:
        city = seed_demo(container.services, seed=7, merchants=12, consumers=consumers,
                         couriers=max(1, couriers))
        with container.services.uow(read_only=True) as uow:
            merchants = [(m, uow.merchants.get(m).menu[0].id)  # type: ignore[union-attr]
                         for m in city.merchant_ids]
        keys = [issue_api_key(container.services, role="consumer", subject_id=c)[1]
                for c in city.consumer_ids]
        courier_keys = [issue_api_key(container.services, role="courier", subject_id=c)[1]
                        for c in city.courier_ids]
    finally:
        container.close()
    return City(consumer_keys=keys, merchants=merchants, courier_keys=courier_keys)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(*envs: dict[str, str]) -> Iterator[list[tuple[str, int]]]:
    """One `lastmile serve` per environment, each on a free port, stopped when the block
    ends: [(base URL, pid)]."""
    with ExitStack() as stack:
        servers = [stack.enter_context(server(env)) for env in envs]
        yield [(s.base, s.pid) for s in servers]


def _order_body(rng: random.Random, city: City) -> dict[str, Any]:
    merchant, item = rng.choice(city.merchants)
    return {"merchant_id": merchant, "items": [{"item_id": item, "quantity": 1}],
            "dropoff": {"lat": NEAR["lat"] + rng.uniform(-0.02, 0.02),
                        "lng": NEAR["lng"] + rng.uniform(-0.02, 0.02)}, "tip_minor": 100}


class Http:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: a few tens of microseconds
    of CPU per request, so one load-generator process can outrun the server (httpx in
    threads spends about a millisecond a request and the GIL, and measured itself)."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Bearer {key}\r\n".encode()
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   extra: str = "") -> tuple[int, dict[str, str]]:
        payload = json.dumps(body).encode() if body is not None else b""
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Length: {len(payload)}\r\nContent-Type: application/json\r\n"
                f"{extra}").encode() + self.auth + b"\r\n"
        for attempt in (0, 1):  # once more on a fresh connection if the old one was closed
            if self.conn is None:
                self.conn = await asyncio.open_connection(self.host, self.port)
            reader, writer = self.conn
            try:
                writer.write(head + payload)
                raw = await reader.readuntil(b"\r\n\r\n")
                lines = raw.decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                await reader.readexactly(int(headers.get("content-length", "0")))
                return int(lines[0].split()[1]), headers
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()


async def _placer(http: Http, city: City, seed: int, until: float, tally: ClassTally) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        t0 = time.perf_counter()
        try:
            status, headers = await http.call("POST", "/v1/consumer/orders",
                                              _order_body(rng, city),
                                              f"Idempotency-Key: {uuid.uuid4().hex}\r\n")
        except OSError:
            tally.add(599, 0.0)
            await asyncio.sleep(0.05)
            continue
        tally.add(status, (time.perf_counter() - t0) * 1000)
        if status == 429:
            await asyncio.sleep(min(float(headers.get("retry-after", "1")), 0.2))


async def _pinger(http: Http, index: int, until: float, tally: ClassTally) -> None:
    """A courier on shift sending its position every ``PING_EVERY_S`` (a critical class)."""
    rng = random.Random(500 + index)
    device = f"bench-{index}-{uuid.uuid4().hex[:6]}"
    await http.call("POST", "/v1/courier/shift/start", {"device_id": device, "duration_s": 7200})
    lat, lng = NEAR["lat"], NEAR["lng"]
    while time.monotonic() < until:
        lat, lng = lat + rng.uniform(-1e-4, 1e-4), lng + rng.uniform(-1e-4, 1e-4)
        t0 = time.perf_counter()
        try:
            status, _ = await http.call("POST", "/v1/courier/location", {
                "device_id": device, "lat": lat, "lng": lng, "accuracy_m": 10.0,
                "client_ts": time.time(), "speed_mps": 4.0})
        except OSError:
            tally.add(599, 0.0)
            continue
        tally.add(status, (time.perf_counter() - t0) * 1000)
        await asyncio.sleep(PING_EVERY_S)


async def _browser(http: Http, city: City, seed: int, until: float, tally: ClassTally,
                   backoff_cap_s: float) -> None:
    rng = random.Random(seed)
    step = 0
    near = f"/v1/consumer/merchants?lat={NEAR['lat']}&lng={NEAR['lng']}"
    while time.monotonic() < until:
        merchant, _ = rng.choice(city.merchants)
        t0 = time.perf_counter()
        try:
            if step % 3 == 0:
                status, headers = await http.call("GET", near)
            elif step % 3 == 1:
                status, headers = await http.call("GET", f"/v1/consumer/merchants/{merchant}/menu")
            else:
                status, headers = await http.call("POST", "/v1/consumer/quotes",
                                                  _order_body(rng, city))
        except OSError:
            tally.add(599, 0.0)
            await asyncio.sleep(0.05)
            continue
        step += 1
        tally.add(status, (time.perf_counter() - t0) * 1000)
        if status == 429:
            await asyncio.sleep(min(float(headers.get("retry-after", "1")), backoff_cap_s))


async def _clients(port: int, city: City, *, seconds: float, placers: int, browsers: int,
                   backoff_cap_s: float, tallies: dict[str, ClassTally]) -> None:
    until = time.monotonic() + seconds
    keys = city.consumer_keys
    conns = [Http("127.0.0.1", port, keys[i % len(keys)]) for i in range(placers + browsers)]
    pingers = [Http("127.0.0.1", port, key) for key in city.courier_keys]
    tasks = [_placer(conns[i], city, i, until, tallies["orders"]) for i in range(placers)]
    tasks += [_browser(conns[placers + i], city, 1000 + i, until, tallies["browse"],
                       backoff_cap_s) for i in range(browsers)]
    tasks += [_pinger(http, i, until, tallies["pings"]) for i, http in enumerate(pingers)]
    conns += pingers
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    finally:
        for c in conns:
            c.close()


def phase(base: str, pid: int, city: City, *, seconds: float, placers: int, browsers: int,
          backoff_cap_s: float) -> dict[str, Any]:
    """Run placers and browsers for ``seconds``; per-class tallies and the server's CPU."""
    tallies = {"orders": ClassTally(), "pings": ClassTally(), "browse": ClassTally()}
    port = int(base.rsplit(":", 1)[1])
    cpu0 = cpu_seconds(pid)
    asyncio.run(_clients(port, city, seconds=seconds, placers=placers, browsers=browsers,
                         backoff_cap_s=backoff_cap_s, tallies=tallies))
    return {**{name: t.summary() for name, t in tallies.items()},
            "server_cpu_s": round(cpu_seconds(pid) - cpu0, 2), "seconds": seconds,
            "placers": placers, "browsers": browsers}


def bench(*, seconds: float, placers: int, browsers: int, shed_browse: int, shed_normal: int,
          pingers: int = 2, backoff_cap_s: float = 0.05, baseline: bool = True,
          announce: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, database("sqlite", tmp) as env:
        city = prepare(env, consumers=max(4, placers + browsers), couriers=pingers)
        base_env = {**env, **NO_RATE_LIMITS}
        shed_env = {**base_env, "LASTMILE_SHED_BROWSE_INFLIGHT": str(shed_browse),
                    "LASTMILE_SHED_NORMAL_INFLIGHT": str(shed_normal),
                    "LASTMILE_SHED_CRITICAL_INFLIGHT": "256"}
        out: dict[str, Any] = {}
        with serving({**base_env, **UNSHED}, shed_env) as [(plain, plain_pid), (guarded, pid)]:
            phases = [("surge_unshed", plain, plain_pid, browsers),
                      ("surge_shed", guarded, pid, browsers)]
            if baseline:
                phases.insert(0, ("baseline", plain, plain_pid, max(1, browsers // 50)))
            for name, base, server_pid, n in phases:
                out[name] = phase(base, server_pid, city, seconds=seconds, placers=placers,
                                  browsers=n, backoff_cap_s=backoff_cap_s)
                _announce(announce, name, out[name])
    names = [name for name in ("baseline", "surge_unshed", "surge_shed") if name in out]
    out["order_p99_ms"] = {k: out[k]["orders"]["p99_ms"] for k in names}
    out["order_p50_ms"] = {k: out[k]["orders"]["p50_ms"] for k in names}
    out["ping_p99_ms"] = {k: out[k]["pings"]["p99_ms"] for k in names}
    return out


def _announce(enabled: bool, name: str, result: dict[str, Any]) -> None:
    if enabled:
        print(json.dumps({"phase": name, **result}), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--placers", type=int, default=4, help="order placement threads")
    parser.add_argument("--browse-clients", type=int, default=50,
                        help="browse threads in the surge (the baseline has 1/50 of them)")
    parser.add_argument("--pingers", type=int, default=2, help="couriers pinging (critical)")
    parser.add_argument("--shed-browse", type=int, default=4)
    parser.add_argument("--shed-normal", type=int, default=8)
    parser.add_argument("--backoff-cap", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="3 s phases, 2 placers, 16 browse")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.placers, args.browse_clients = 3.0, 2, 16
    out = bench(seconds=args.seconds, placers=args.placers, browsers=args.browse_clients,
                shed_browse=args.shed_browse, shed_normal=args.shed_normal,
                pingers=args.pingers, backoff_cap_s=args.backoff_cap)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
