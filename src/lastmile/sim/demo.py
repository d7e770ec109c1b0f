"""``lastmile demo``: a synthetic city living on the real platform, in accelerated time.

The API server runs in-process (uvicorn on 127.0.0.1 in a thread) with its
dispatcher worker and outbox relay; the same ``World`` as ``lastmile simulate``
drives consumers, merchants and couriers, but through ``HttpActions``: every
step is an HTTP call with that person's API key. One ``AcceleratedClock``
(``speed`` simulated seconds per wall second) is injected into the container,
so server and world agree on the simulated time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from lastmile.app.auth import issue_api_key
from lastmile.core.geo import Point
from lastmile.core.offers import OfferStop
from lastmile.core.pricing import PricingPolicy
from lastmile.sim.actions import OfferView, OrderAsk, PlacedView, QuoteView, Refused
from lastmile.sim.city import City, build_city
from lastmile.sim.scenarios import Scenario

_MAX_SLEEP_S = 0.1  # wall seconds: keeps Ctrl-C and stop requests responsive


class AcceleratedClock:
    """Simulated epoch seconds running ``speed`` times faster than the wall clock."""

    def __init__(self, start: float, speed: float, *,
                 wall: Callable[[], float] = time.monotonic):
        if speed <= 0:
            raise ValueError(f"speed must be > 0 (got {speed})")
        self.speed = speed
        self._wall = wall  # injected in tests: patching time.monotonic reaches every thread
        self._lock = threading.Lock()
        self._start, self._wall0 = start, wall()

    def now(self) -> float:
        with self._lock:
            return self._start + (self._wall() - self._wall0) * self.speed

    def restart_at(self, start: float) -> None:
        """Jump to ``start`` now (after setup, when the city goes live)."""
        with self._lock:
            self._start, self._wall0 = start, self._wall()


class WallDriver:
    """The world waits for the accelerated clock instead of setting it."""

    def __init__(self, clock: AcceleratedClock, stop: threading.Event):
        self.clock, self.stop = clock, stop

    def now(self) -> float:
        return self.clock.now()

    def advance_to(self, t: float) -> None:
        while not self.stop.is_set():
            ahead_s = (t - self.clock.now()) / self.clock.speed
            if ahead_s <= 0:
                return
            time.sleep(min(ahead_s, _MAX_SLEEP_S))


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _minor(prices: dict[str, Any], *names: str) -> int:
    return sum(int(prices[n]["amount_minor"]) for n in names)


_FEES = ("delivery_fee", "service_fee", "small_order_fee")


class HttpActions:
    """The world's actions as HTTP calls, each with the acting person's API key."""

    def __init__(self, base_url: str, keys: dict[str, str], clock: AcceleratedClock):
        self.http = httpx.Client(base_url=base_url, timeout=30.0)
        self.keys = keys
        self.clock = clock
        self.calls = 0

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, who: str, json: Any = None,
              headers: dict[str, str] | None = None) -> Any:
        self.calls += 1
        r = self.http.request(method, path, json=json, headers={
            "Authorization": f"Bearer {self.keys[who]}", **(headers or {})})
        if r.status_code >= 400:
            try:
                code = r.json().get("code", f"http_{r.status_code}")
            except ValueError:
                code = f"http_{r.status_code}"
            raise Refused(code, r.text[:200])
        return r.json() if r.content else None

    @staticmethod
    def _body(ask: OrderAsk) -> dict[str, Any]:
        return {"merchant_id": ask.merchant_id,
                "items": [{"item_id": ask.item_id, "quantity": ask.quantity}],
                "dropoff": {"lat": ask.dropoff.lat, "lng": ask.dropoff.lng}}

    def quote(self, ask: OrderAsk) -> QuoteView:
        q = self._send("POST", "/v1/consumer/quotes", ask.consumer_id, self._body(ask))
        return QuoteView(fees_minor=_minor(q["prices"], *_FEES),
                         eta_expected_at=_epoch(q["eta"]["expected"]))

    def place(self, ask: OrderAsk, *, key: str) -> PlacedView:
        o = self._send("POST", "/v1/consumer/orders", ask.consumer_id, self._body(ask),
                       headers={"Idempotency-Key": key})
        return PlacedView(order_id=o["id"], placed_at=_epoch(o["placed_at"]),
                          eta_expected_at=_epoch(o["eta"]["expected"]),
                          eta_high_at=_epoch(o["eta"]["high"]),
                          eta_low_at=_epoch(o["eta"]["low"]),
                          fees_minor=_minor(o["prices"], *_FEES),
                          currency=o["prices"]["total"]["currency"])

    def confirm(self, merchant_id: str, order_id: str, prep_s: int) -> None:
        self._send("POST", f"/v1/merchant/orders/{order_id}/confirm", merchant_id,
                   {"prep_estimate_s": prep_s})

    def mark_ready(self, merchant_id: str, order_id: str) -> None:
        self._send("POST", f"/v1/merchant/orders/{order_id}/ready", merchant_id)

    def cancel(self, consumer_id: str, order_id: str, reason: str) -> None:
        self._send("POST", f"/v1/consumer/orders/{order_id}/cancel", consumer_id,
                   {"reason": reason})

    def start_shift(self, courier_id: str, device_id: str, duration_s: int) -> None:
        self._send("POST", "/v1/courier/shift/start", courier_id,
                   {"device_id": device_id, "duration_s": min(duration_s, 16 * 3600)})

    def end_shift(self, courier_id: str) -> None:
        self._send("POST", "/v1/courier/shift/end", courier_id)

    def ping(self, courier_id: str, device_id: str, at: Point) -> None:
        self._send("POST", "/v1/courier/location", courier_id, {
            "device_id": device_id, "lat": at.lat, "lng": at.lng, "accuracy_m": 10.0,
            "client_ts": self.clock.now()})

    def current_offer(self, courier_id: str) -> OfferView | None:
        o = self._send("GET", "/v1/courier/offer", courier_id)["offer"]
        if not o:
            return None
        return OfferView(id=o["id"], order_ids=tuple(o["order_ids"]),
                         stops=tuple(OfferStop.from_json(s) for s in o.get("stops") or ()),
                         from_courier_id=o.get("from_courier_id"))

    def accept(self, courier_id: str, offer_id: str) -> None:
        self._send("POST", f"/v1/courier/offers/{offer_id}/accept", courier_id)

    def decline(self, courier_id: str, offer_id: str) -> None:
        self._send("POST", f"/v1/courier/offers/{offer_id}/decline", courier_id,
                   {"reason": "not for me"})

    def arrive(self, courier_id: str, order_id: str) -> None:
        self._send("POST", f"/v1/courier/orders/{order_id}/arrive", courier_id)

    def pick_up(self, courier_id: str, order_id: str) -> None:
        self._send("POST", f"/v1/courier/orders/{order_id}/pickup", courier_id)

    def deliver(self, courier_id: str, order_id: str) -> None:
        self._send("POST", f"/v1/courier/orders/{order_id}/deliver", courier_id,
                   {"photo_ref": "demo://door"})

    def dispatch(self, region_ids: tuple[str, ...]) -> None:
        return None  # the server's dispatcher worker runs the rounds on its own tick


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1:``port`` in a daemon thread."""

    def __init__(self, app: Any, port: int):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="api-server", daemon=True)

    def start(self, timeout_s: float = 20.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start (is the port free?)")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSetup:
    city: City
    keys: dict[str, str]
    ops_key: str


def seed_city(services: Any, scenario: Scenario, seed: int) -> DemoSetup:
    """Create the city and one API key per consumer, merchant and courier (plus ops)."""
    city = build_city(services, scenario, random.Random(seed))
    keys: dict[str, str] = {}
    for m in city.merchants:
        keys[m.id] = issue_api_key(services, role="merchant", subject_id=m.id)[1]
    for ids in city.consumers.values():
        for cid in ids:
            keys[cid] = issue_api_key(services, role="consumer", subject_id=cid)[1]
    for c in city.couriers:
        keys[c.id] = issue_api_key(services, role="courier", subject_id=c.id)[1]
    ops_key = issue_api_key(services, role="ops", subject_id="demo-ops")[1]
    return DemoSetup(city=city, keys=keys, ops_key=ops_key)


def start_of(scenario: Scenario) -> float:
    return scenario.day_start + scenario.start_h * 3600


def _temp_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="lastmile-demo-"))


@dataclass(slots=True, kw_only=True)
class DemoRun:
    """A running demo: the server, the world and what they share."""

    container: Any
    server: ServerThread
    world: Any
    actions: HttpActions
    setup: DemoSetup
    clock: AcceleratedClock
    port: int
    stop: threading.Event
    owned_dir: Path | None = None  # a temporary data folder the demo made and removes

    @property
    def region_id(self) -> str:
        return self.setup.city.regions[0].id

    def dashboard_url(self, region_id: str | None = None) -> str:
        return (f"http://127.0.0.1:{self.port}/ops/dashboard?region="
                f"{region_id or self.region_id}#key={self.setup.ops_key}")

    def dashboard_urls(self) -> list[str]:
        """One dashboard per region (a multi-city scenario has several)."""
        return [self.dashboard_url(r.id) for r in self.setup.city.regions]

    def close(self) -> None:
        """Stop the world, the server (its lifespan stops the workers) and remove temp data.

        Idempotent, and safe to call from ``finally`` after an error or Ctrl-C.
        """
        self.stop.set()
        self.actions.close()
        self.server.stop()
        _discard(self.owned_dir)
        self.owned_dir = None


def _discard(folder: Path | None) -> None:
    import shutil

    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def start_demo(scenario: Scenario, *, seed: int, minutes: float, speed: float, port: int,
               data_dir: Path | None, dispatch_every_s: float = 30.0,
               eta_models: Path | None = None, pricing: PricingPolicy | None = None
               ) -> DemoRun:
    """Seed the city, start the API server with its workers, and prepare the world.
    ``pricing``: the deployment's pricing policy instead of the default (its ETA model)."""
    from lastmile.api.app import create_app
    from lastmile.bootstrap import build
    from lastmile.settings import Settings
    from lastmile.sim.model import WorldConfig
    from lastmile.sim.world import World

    clock = AcceleratedClock(start_of(scenario), speed)
    folder = data_dir if data_dir is not None else _temp_dir()
    owned = None if data_dir is not None else folder
    container = build(Settings(data_dir=folder, eta_models_dir=eta_models), clock=clock,
                      rng=random.Random(seed), dispatch_interval_s=dispatch_every_s / speed)
    if pricing is not None:
        container.services = replace(container.services, pricing=pricing)
        container.tracking.services = container.services
    try:
        setup = seed_city(container.services, scenario, seed)
        server = ServerThread(create_app(container), port)
        server.start()
    except BaseException:  # the port is taken, or Ctrl-C while seeding: leave nothing behind
        container.close()
        _discard(owned)
        raise
    stop = threading.Event()
    actions = HttpActions(f"http://127.0.0.1:{port}", setup.keys, clock)
    world = World(city=setup.city, scenario=scenario, actions=actions,
                  driver=WallDriver(clock, stop), seed=seed, hours=minutes / 60,
                  config=WorldConfig(dispatch_every_s=dispatch_every_s))
    clock.restart_at(start_of(scenario))
    return DemoRun(container=container, server=server, world=world, actions=actions,
                   setup=setup, clock=clock, port=port, stop=stop, owned_dir=owned)
