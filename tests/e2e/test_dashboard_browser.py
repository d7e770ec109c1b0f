"""The ops dashboard in real headless Chromium against a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastmile.api.app import create_app
from lastmile.app.auth import issue_api_key
from lastmile.bootstrap import Container, build
from lastmile.settings import Settings
from lastmile.sim.seed import DEMO_CENTER, SeedSummary, seed_demo

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="no Chromium at /usr/bin/chromium (apt-get install -y chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    base: str
    container: Container
    seed: SeedSummary
    http: httpx.Client
    keys: dict[str, str]

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def post(self, path: str, who: str, json: Any = None, **headers: str) -> Any:
        r = self.http.post(path, json=json, headers=self.h(who, **headers))
        assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text}"
        return r.json()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    import uvicorn

    container = build(Settings(data_dir=tmp_path))
    seed = seed_demo(container.services, merchants=12, consumers=6, couriers=5)
    svc = container.services
    keys = {"ops": issue_api_key(svc, role="ops", subject_id="ops")[1]}
    for i, cid in enumerate(seed.consumer_ids[:3]):
        keys[f"consumer{i}"] = issue_api_key(svc, role="consumer", subject_id=cid)[1]
    for i, mid in enumerate(seed.merchant_ids[:3]):
        keys[f"merchant{i}"] = issue_api_key(svc, role="merchant", subject_id=mid)[1]
    for i, cid in enumerate(seed.courier_ids):
        keys[f"courier{i}"] = issue_api_key(svc, role="courier", subject_id=cid)[1]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(container), host="127.0.0.1", port=port,
                                           log_level="warning", ws="websockets-sansio",
                                           access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as http:
        yield Live(base=base, container=container, seed=seed, http=http, keys=keys)
    server.should_exit = True
    thread.join(timeout=10)


def ping(live: Live, who: str, lat: float, lng: float, *, ago_s: float = 0.0) -> None:
    live.post("/v1/courier/location", who, {"device_id": "d1", "lat": lat, "lng": lng,
                                             "accuracy_m": 8, "client_ts": time.time() - ago_s})


def place(live: Live, n: int, dlat: float, dlng: float) -> str:
    merchant = live.seed.merchant_ids[n % 3]
    menu = live.http.get(f"/v1/consumer/merchants/{merchant}/menu", headers=live.h("consumer0"))
    item = menu.json()["items"][0]["id"]
    body = {"merchant_id": merchant, "items": [{"item_id": item, "quantity": 1 + n % 2}],
            "dropoff": {"lat": DEMO_CENTER.lat + dlat, "lng": DEMO_CENTER.lng + dlng}}
    order = live.post("/v1/consumer/orders", f"consumer{n % 3}", body,
                      **{"Idempotency-Key": f"browser-{n}"})
    return str(order["id"])


def deliver(live: Live, order_id: str, merchant: str, courier_n: int) -> None:
    live.post(f"/v1/merchant/orders/{order_id}/confirm", merchant, {"prep_estimate_s": 300})
    offer = live.post("/v1/ops/offers", "ops", {"courier_id": live.seed.courier_ids[courier_n],
                                                "order_ids": [order_id]})
    live.post(f"/v1/courier/offers/{offer['id']}/accept", f"courier{courier_n}")
    live.post(f"/v1/merchant/orders/{order_id}/ready", merchant)
    for step in ("arrive", "pickup", "arrive"):
        live.post(f"/v1/courier/orders/{order_id}/{step}", f"courier{courier_n}")
    live.post(f"/v1/courier/orders/{order_id}/deliver", f"courier{courier_n}", {"note": "door"})


def tile(page: Any, kpi: str) -> str:
    return str(page.get_attribute(f'.tile[data-kpi="{kpi}"]', "data-value"))


def test_dashboard_shows_live_couriers_orders_and_kpis(live: Live) -> None:
    from playwright.sync_api import sync_playwright

    # Some history before the page opens: couriers on shift, one delivered order, one open.
    for i in range(1, 4):
        live.post("/v1/courier/shift/start", f"courier{i}", {"device_id": "d1", "duration_s": 7200})
        ping(live, f"courier{i}", DEMO_CENTER.lat + 0.012 * (i - 2),
             DEMO_CENTER.lng + 0.015 * (i - 2), ago_s=30)
    done = place(live, 0, 0.01, 0.01)
    deliver(live, done, "merchant0", 1)
    place(live, 1, -0.02, 0.03)
    assigned = place(live, 2, 0.025, -0.01)
    live.post(f"/v1/merchant/orders/{assigned}/confirm", "merchant2", {"prep_estimate_s": 600})
    offer = live.post("/v1/ops/offers", "ops", {"courier_id": live.seed.courier_ids[2],
                                                "order_ids": [assigned]})
    live.post(f"/v1/courier/offers/{offer['id']}/accept", "courier2")
    ping(live, "courier2", DEMO_CENTER.lat + 0.001, DEMO_CENTER.lng + 0.001)  # now to_pickup

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            urls: list[str] = []
            page.on("request", lambda request: urls.append(request.url))
            page.on("websocket", lambda ws: urls.append(ws.url))
            # The key rides in the fragment: it never reaches the server in any URL.
            page.goto(f"{live.base}/ops/dashboard?region=reg_demo#key={live.keys['ops']}")
            page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=15_000)
            page.wait_for_function("() => window.lastmileState.connection === 'live'", timeout=10_000)
            assert int(page.get_attribute("#map", "data-merchants") or 0) == 12
            # The key leaves the address bar (history, bookmarks); a reload still works.
            assert live.keys["ops"] not in page.url and "key=" not in page.url
            page.reload()
            page.wait_for_function("() => window.lastmileState.connection === 'live'", timeout=15_000)
            # The WebSocket opened with a one-minute stream token, never with the key.
            assert any(u.endswith("/v1/stream-tokens") for u in urls)
            assert any(u.startswith("ws://") for u in urls)
            assert not [u for u in urls if live.keys["ops"] in u]
            assert page.evaluate("window.lastmileState.region.id") == "reg_demo"
            assert tile(page, "click_to_door") != ""
            assert page.locator("#orders-body tr[data-order-id]").count() == 2

            # A courier starts a shift and moves: the drawn position follows.
            courier = live.seed.courier_ids[0]
            open_before = tile(page, "open_orders")
            couriers_before = tile(page, "active_couriers")
            live.post("/v1/courier/shift/start", "courier0", {"device_id": "d1", "duration_s": 7200})
            # The first fix was taken 50 s ago, so 1.5 km later is a ride, not a GPS jump.
            ping(live, "courier0", DEMO_CENTER.lat - 0.02, DEMO_CENTER.lng - 0.03, ago_s=50)
            page.wait_for_function(f"() => window.lastmileState.couriers['{courier}']?.x > 0",
                                   timeout=10_000)
            first = page.evaluate(f"window.lastmileState.couriers['{courier}']")
            ping(live, "courier0", DEMO_CENTER.lat - 0.01, DEMO_CENTER.lng - 0.018)
            page.wait_for_function(
                f"() => window.lastmileState.couriers['{courier}'].x !== {first['x']}", timeout=10_000)
            second = page.evaluate(f"window.lastmileState.couriers['{courier}']")
            assert second["x"] > first["x"] and second["y"] < first["y"]  # moved north-east
            page.wait_for_function(
                f"() => document.querySelector('.tile[data-kpi=\"active_couriers\"]').dataset.value"
                f" !== '{couriers_before}'", timeout=10_000)

            # A new order (placed and confirmed) shows up and the open-orders tile changes.
            new_order = place(live, 3, 0.005, -0.035)
            live.post(f"/v1/merchant/orders/{new_order}/confirm", "merchant0",
                      {"prep_estimate_s": 600})
            page.wait_for_function(
                f"() => document.querySelector('.tile[data-kpi=\"open_orders\"]').dataset.value"
                f" !== '{open_before}'", timeout=10_000)
            assert int(tile(page, "open_orders")) == int(open_before) + 1
            page.wait_for_selector(f'#orders-body tr[data-order-id="{new_order}"]',
                                   timeout=10_000)

            # Clicking the order shows its timeline from the event history.
            page.click(f'#orders-body tr[data-order-id="{new_order}"]')
            page.wait_for_selector('#timeline li[data-type="order.confirmed"]', timeout=10_000)
            assert page.locator('#timeline li[data-type="order.placed"]').count() == 1
            assert page.evaluate("window.lastmileState.eventsReceived") >= 3

            ARTIFACTS.mkdir(exist_ok=True)
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []


def test_dashboard_reports_a_bad_key_instead_of_failing_silently(live: Live) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live.base}/ops/dashboard?region=reg_demo#key=lm_ops_wrong")
            page.wait_for_selector("#banner:not([hidden])", timeout=10_000)
            assert "401" in page.inner_text("#banner")
            assert page.get_attribute("#conn", "data-state") == "refused"
        finally:
            browser.close()
