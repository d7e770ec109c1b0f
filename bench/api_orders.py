"""Orders placed per second through the HTTP API, on SQLite and on PostgreSQL, with the
dispatcher and the rest of a lunch working beside the load.

Starts `lastmile serve --dispatch-every 1` (the real DispatchWorker in the server
process, on the same database and live store) for each database and seeds the demo
city. Then, for a bounded time and all against that one server:

- consumers (``--clients`` threads) place orders, each with its own Idempotency-Key,
  at merchants chosen with a skewed popularity (several orders per merchant, so the
  dispatcher bundles);
- merchant desks (``--merchant-desks`` threads, the merchants split among them) list
  their new orders once a second, confirm them and, on the next pass, mark them ready;
- couriers (``--couriers`` threads) go on shift, ping their position and poll for an
  offer once a second while idle, accept it (or decline ``DECLINE_SHARE`` of them), then arrive, pick up,
  arrive and deliver each order, with no travel time (the clock is not accelerated:
  the load, not the road, is the point).

Errors are part of the summary: ``errors`` / ``errors_by`` are the order placements
not answered 201 (by status and code), ``lifecycle_errors`` / ``lifecycle_errors_by``
the merchants' and couriers' refused requests; ``requests_per_s`` is everything the
server answered (orders and lifecycle), since the lunch shares the server. After the run the database is read:
orders and offers by status, and ``integrity`` counts orders a courier holds that its
record does not list, and the reverse (lost updates). One JSON line per database,
then ``{"sqlite": {...}, "postgresql": {...}}`` with orders_per_s, p50_ms, p99_ms and
the error counts.

    .venv/bin/python bench/api_orders.py            # 10 s per database (~1.5 min)
    .venv/bin/python bench/api_orders.py --quick    # 3 s per database, fewer actors
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from harness import Tally, database, engine_url, error_key, percentile, seed_city, server

DECLINE_SHARE = 0.05  # couriers decline about one offer in twenty
# An idle courier app pings and checks for an offer once a second (the dispatch tick); a
# merchant tablet refreshes its order list once a second. Faster polling would be load no
# real lunch sends; slower would starve the dispatcher of confirmed orders.
COURIER_POLL_S = 1.0
DESK_PASS_S = 1.0
POPULARITY_EXPONENT = 0.8  # merchant i gets orders in proportion to 1 / (i + 1) ** 0.8
HELD = ("assigned", "at_pickup", "picked_up", "at_dropoff")  # a courier holds the order


@dataclass(frozen=True, slots=True, kw_only=True)
class City:
    consumer_keys: list[str]
    merchants: list[tuple[str, str, str]]  # (merchant id, its key, an item id)
    courier_keys: list[str]


@dataclass(slots=True, kw_only=True)
class Side:
    """What the merchants' and couriers' threads saw, shared between them."""

    stop: threading.Event = field(default_factory=threading.Event)
    tally: dict[str, Tally] = field(default_factory=lambda: {"courier": Tally(),
                                                              "merchant": Tally()})
    counts: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, client: httpx.Client, who: str, method: str, path: str, key: str,
             body: dict[str, Any] | None = None, **params: Any) -> Any:
        """The answer's JSON on 2xx, else None (the refusal counted for ``who``)."""
        t0 = time.perf_counter()
        try:
            r = client.request(method, path, json=body, params=params or None,
                               headers={"Authorization": f"Bearer {key}"})
        except httpx.HTTPError as exc:
            self.tally[who].add(f"transport {exc.__class__.__name__}")
            return None
        with self.lock:
            self.latencies.append((time.perf_counter() - t0) * 1000)
        return r.json() if self.tally[who].answer(r) else None

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1


def _prepare(env: dict[str, str], consumers: int, couriers: int) -> City:
    city = seed_city(env, consumers=consumers, merchants=24, couriers=couriers,
                     key_roles=("merchant", "consumer", "courier"))
    return City(consumer_keys=city.keys["consumer"], courier_keys=city.keys["courier"],
                merchants=list(zip(city.merchant_ids, city.keys["merchant"],
                                   city.merchant_items, strict=True)))


def _merchant_desk(base: str, merchants: Sequence[tuple[str, str, str]], side: Side) -> None:
    """Confirm new orders (60 s preparation); mark ready what was confirmed a pass ago."""
    with httpx.Client(base_url=base, timeout=30) as client:
        while not side.stop.is_set():
            for _, key, _ in merchants:
                if side.stop.is_set():
                    return
                cooked = side.call(client, "merchant", "GET", "/v1/merchant/orders", key,
                                   status="confirmed", limit=50)
                new = side.call(client, "merchant", "GET", "/v1/merchant/orders", key,
                                status="placed", limit=50)
                for order in (cooked or {}).get("orders", []):
                    if side.call(client, "merchant", "POST",
                                 f"/v1/merchant/orders/{order['id']}/ready", key) is not None:
                        side.count("ready")
                for order in (new or {}).get("orders", []):
                    if side.call(client, "merchant", "POST",
                                 f"/v1/merchant/orders/{order['id']}/confirm", key,
                                 {"prep_estimate_s": 60}) is not None:
                        side.count("confirmed")
            side.stop.wait(DESK_PASS_S)


def _deliver(client: httpx.Client, side: Side, key: str, order_ids: Sequence[str]) -> None:
    """Arrive at the merchant and pick up every order, then arrive and deliver each."""
    for step in ("arrive", "pickup"):
        for oid in order_ids:
            side.call(client, "courier", "POST", f"/v1/courier/orders/{oid}/{step}", key)
    for oid in order_ids:
        side.call(client, "courier", "POST", f"/v1/courier/orders/{oid}/arrive", key)
        if side.call(client, "courier", "POST", f"/v1/courier/orders/{oid}/deliver", key,
                     {"photo_ref": f"bench/{oid}.jpg"}) is not None:
            side.count("delivered")


def _courier(base: str, key: str, index: int, side: Side) -> None:
    rng = random.Random(index)
    device = f"main-{index}"
    lat, lng = 37.4419 + rng.uniform(-0.03, 0.03), -122.143 + rng.uniform(-0.03, 0.03)
    with httpx.Client(base_url=base, timeout=30) as client:
        if side.call(client, "courier", "POST", "/v1/courier/shift/start", key,
                     {"device_id": device, "duration_s": 7200}) is None:
            return
        while not side.stop.is_set():
            lat, lng = lat + rng.uniform(-1e-4, 1e-4), lng + rng.uniform(-1e-4, 1e-4)
            side.call(client, "courier", "POST", "/v1/courier/location", key,
                      {"device_id": device, "lat": lat, "lng": lng, "accuracy_m": 10.0,
                       "client_ts": time.time(), "speed_mps": 4.0})
            found = side.call(client, "courier", "GET", "/v1/courier/offer", key)
            offer = (found or {}).get("offer")
            if offer is None:
                side.stop.wait(COURIER_POLL_S)
                continue
            side.count("offers_seen")
            if rng.random() < DECLINE_SHARE:
                if side.call(client, "courier", "POST", f"/v1/courier/offers/{offer['id']}/decline",
                             key, {"reason": "too far"}) is not None:
                    side.count("offers_declined")
                continue
            if side.call(client, "courier", "POST", f"/v1/courier/offers/{offer['id']}/accept",
                         key) is None:
                continue
            side.count("offers_accepted")
            _deliver(client, side, key, offer["order_ids"])


def _order_body(rng: random.Random, city: City, weight: Sequence[float]) -> dict[str, Any]:
    merchant, _, item = rng.choices(city.merchants, weight)[0]
    return {"merchant_id": merchant, "items": [{"item_id": item, "quantity": 1}],
            "dropoff": {"lat": 37.445 + rng.uniform(-0.02, 0.02),
                        "lng": -122.15 + rng.uniform(-0.02, 0.02)},
            "tip_minor": 100}


def _consumer(base: str, key: str, index: int, city: City, until: float, max_orders: int,
              latencies: list[float], lock: threading.Lock, tally: Tally) -> None:
    """Place orders back to back until ``until`` (monotonic) or ``max_orders`` answers."""
    rng = random.Random(1000 + index)
    weight = [1.0 / (i + 1) ** POPULARITY_EXPONENT for i in range(len(city.merchants))]
    with httpx.Client(base_url=base, timeout=30) as client:
        while time.monotonic() < until:
            with lock:
                if len(latencies) + tally.total() >= max_orders:
                    return
            t0 = time.perf_counter()
            try:
                r = client.post("/v1/consumer/orders", json=_order_body(rng, city, weight),
                                headers={"Authorization": f"Bearer {key}",
                                         "Idempotency-Key": uuid.uuid4().hex})
            except httpx.HTTPError as exc:
                tally.add(f"transport {exc.__class__.__name__}")
                continue
            dt = (time.perf_counter() - t0) * 1000
            if r.status_code != 201:
                tally.add(error_key(r.status_code, r.content))
                continue
            with lock:
                latencies.append(dt)


def _consumers(base: str, city: City, seconds: float, max_orders: int, tally: Tally,
               ) -> tuple[list[float], float]:
    """Place orders from every consumer thread; (201 latencies in ms, wall seconds)."""
    latencies: list[float] = []
    lock = threading.Lock()
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=_consumer, args=(base, k, i, city, until, max_orders,
                                                         latencies, lock, tally))
               for i, k in enumerate(city.consumer_keys)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - t0


def integrity(orders: Iterable[tuple[str, str | None, str]],
              couriers: Iterable[tuple[str, Sequence[str]]]) -> dict[str, int]:
    """Lost updates seen in the final state: orders held by a courier (``HELD`` status,
    ``courier_id`` set) missing from that courier's ``active_order_ids``, and ids a
    courier lists that it does not hold. Both are 0 when no update was lost."""
    held = {oid: cid for oid, cid, status in orders if status in HELD and cid is not None}
    listed = {(cid, oid) for cid, ids in couriers for oid in ids}
    return {"held_not_listed": sum(1 for oid, cid in held.items() if (cid, oid) not in listed),
            "listed_not_held": sum(1 for cid, oid in listed if held.get(oid) != cid)}


def _final_state(env: dict[str, str]) -> dict[str, Any]:
    engine = sa.create_engine(engine_url(env))
    with engine.connect() as conn:
        orders = [tuple(r) for r in conn.execute(sa.text(
            "select id, courier_id, status from orders"))]
        couriers = [(r[0], json.loads(r[1]) if isinstance(r[1], str) else r[1])
                    for r in conn.execute(sa.text("select id, active_order_ids from couriers"))]
        offers = Counter(r[0] for r in conn.execute(sa.text("select status from offers")))
    engine.dispose()
    return {"orders_by_status": dict(sorted(Counter(o[2] for o in orders).items())),
            "offers_by_status": dict(sorted(offers.items())),
            "integrity": integrity(orders, couriers)}


def summarise(latencies: Sequence[float], wall_s: float, orders: Tally, side: Side,
              clients: int) -> dict[str, Any]:
    """The per-database line: placements (throughput, latency, errors) and the lifecycle."""
    lat = sorted(latencies)
    life = sorted(side.latencies)
    by_side = {who: t.summary() for who, t in side.tally.items()}
    wall = max(wall_s, 1e-9)
    return {
        "orders_per_s": round(len(lat) / wall, 1), "p50_ms": percentile(lat, 0.5),
        "p99_ms": percentile(lat, 0.99), "orders": len(lat), **orders.summary(),
        "clients": clients, "wall_s": round(wall_s, 2),
        "requests_per_s": round((len(lat) + orders.total() + len(life)) / wall, 1),
        "lifecycle_requests": len(life), "lifecycle_p50_ms": percentile(life, 0.5),
        "lifecycle_p99_ms": percentile(life, 0.99),
        "lifecycle_errors": sum(int(s["errors"]) for s in by_side.values()),
        "lifecycle_errors_by": {who: s["errors_by"] for who, s in by_side.items()},
        "delivered_per_s": round(side.counts["delivered"] / wall, 1),
        **{k: side.counts[k] for k in ("confirmed", "ready", "offers_seen", "offers_accepted",
                                       "offers_declined", "delivered")},
    }


def bench(db: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lastmile-bench-") as tmp, database(db, tmp) as env:
        city = _prepare(env, args.clients, args.couriers)
        side, tally = Side(), Tally()
        with server(env, ["--dispatch-every", "1"]) as srv:
            base = srv.base
            desks = [city.merchants[i::args.merchant_desks] for i in range(args.merchant_desks)]
            helpers = [threading.Thread(target=_merchant_desk, args=(base, d, side)) for d in desks]
            helpers += [threading.Thread(target=_courier, args=(base, k, i, side))
                        for i, k in enumerate(city.courier_keys)]
            for t in helpers:
                t.start()
            latencies, wall = _consumers(base, city, args.seconds, args.max_orders, tally)
            side.stop.set()
            for t in helpers:
                t.join()
        return {**summarise(latencies, wall, tally, side, args.clients), "couriers": args.couriers,
                **_final_state(env)}


def final_line(result: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    keys = ("orders_per_s", "p50_ms", "p99_ms", "errors", "errors_by", "lifecycle_errors",
            "delivered_per_s", "offers_accepted", "integrity")
    return {db: {k: r[k] for k in keys} for db, r in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per database")
    parser.add_argument("--clients", type=int, default=8, help="concurrent consumer threads")
    parser.add_argument("--couriers", type=int, default=10, help="courier threads on shift")
    parser.add_argument("--merchant-desks", type=int, default=2,
                        help="threads confirming and readying the 24 merchants' orders")
    parser.add_argument("--max-orders", type=int, default=5000, help="stop after this many")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--quick", action="store_true",
                        help="3 s per database, 4 clients, 4 couriers, 1 desk")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.clients, args.couriers, args.merchant_desks = 3.0, 4, 4, 1
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    result = {}
    for db in dbs:
        result[db] = bench(db, args)
        print(json.dumps({"db": db, **result[db]}), flush=True)
    print(json.dumps(final_line(result)))


if __name__ == "__main__":
    main()
