"""The synthetic journey: one order and one Drive delivery, end to end, over public HTTP.

Every call goes to a running deployment through its public API, as its clients would: an
ops key acting for the test tenant (``X-Lastmile-Tenant``) makes the parties with the
testkit (``/v1/testkit/...``), then each party acts with its own key. A step is timed and
passes or fails; the first failure stops the journey (later steps are ``not_run``), but the
cleanup always runs. A step may also be ``skipped`` when the deployment lacks what it
checks (the sandbox captures route).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from lastmile.core.webhooks import SIGNATURE_HEADER, verify

PASS, FAIL, SKIP, NOT_RUN = "pass", "fail", "skip", "not_run"
STEPS = ("tenant", "reset", "merchant", "consumer", "courier", "quote", "order", "confirm",
         "ready", "dispatch", "accept", "pickup", "deliver", "drive_create", "drive_dispatch",
         "drive_deliver", "webhook", "cleanup")
DELIVERED_EVENT = "delivery.delivered"
PING_EVERY_S = 5.0  # well inside the live store's freshness (app.live.DEFAULT_MAX_AGE_S)


class ProbeRefused(Exception):
    """The probe must not run here (a live or unknown tenant): exit 2."""


class StepFailed(Exception):
    """A step's check did not hold."""


class StepSkipped(Exception):
    """The deployment lacks what the step checks."""


@dataclass(slots=True)
class Step:
    name: str
    status: str = NOT_RUN
    latency_ms: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == PASS

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "status": self.status,
                "latency_ms": round(self.latency_ms, 1), "detail": self.detail}


@dataclass(slots=True, kw_only=True)
class Party:
    id: str
    key: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class JourneyConfig:
    tenant: str
    ops_key: str
    timeout_s: float = 60.0  # each waiting step (dispatch, webhook) waits at most this long
    poll_s: float = 0.5
    webhook_url: str = "https://probe.lastmile.invalid/webhook"  # never resolves


def _problem(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return f"{r.status_code} {r.text[:200]}"
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("detail") or body.get("message") if isinstance(body, dict) else None
    return f"{r.status_code} {code or ''} {message or ''}".strip()


class Journey:
    """Runs the steps in order against ``client`` (its base URL is the deployment's)."""

    def __init__(self, client: httpx.Client, config: JourneyConfig,
                 wall: Callable[[], float]) -> None:
        self.client = client
        self.config = config
        self.wall = wall  # epoch seconds (pings' device time, signature tolerance)
        self.steps = [Step(name) for name in STEPS]
        self.ids: dict[str, str] = {}
        self._merchant: Party | None = None
        self._consumer: Party | None = None
        self._courier: Party | None = None
        self._endpoint_id: str | None = None
        self._pinged_at = 0.0

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, key: str | None = None,
              ok: tuple[int, ...] = (200, 201), **kwargs: Any) -> dict[str, Any]:
        """A call as the party of ``key`` (its key names its tenant), or without one as ops
        acting for the test tenant; a status outside ``ok`` fails the step."""
        headers = {"Authorization": f"Bearer {key or self.config.ops_key}"}
        if key is None:
            headers["X-Lastmile-Tenant"] = self.config.tenant
        headers.update(kwargs.pop("headers", {}))
        r = self.client.request(method, path, headers=headers, **kwargs)
        if r.status_code not in ok:
            raise StepFailed(f"{method} {path}: {_problem(r)}")
        if r.status_code == 204 or not r.content:
            return {}
        body = r.json()
        return body if isinstance(body, dict) else {"items": body}

    def _ops(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._call(method, path, **kwargs)

    @contextmanager
    def _step(self, name: str) -> Iterator[Step]:
        step = next(s for s in self.steps if s.name == name)
        started = time.perf_counter()
        try:
            yield step
            step.status = PASS
        except StepSkipped as exc:
            step.status, step.detail = SKIP, f"skipped: {exc}"
        except ProbeRefused:
            step.status = FAIL
            raise
        except StepFailed as exc:
            step.status, step.detail = FAIL, str(exc)
        except httpx.HTTPError as exc:
            step.status, step.detail = FAIL, f"{exc.__class__.__name__}: {exc}"
        finally:
            step.latency_ms = (time.perf_counter() - started) * 1000

    def _wait(self, what: str, probe: Callable[[], Any]) -> Any:
        """``probe()`` until it returns something truthy, at most ``timeout_s``."""
        deadline = time.monotonic() + self.config.timeout_s
        while True:
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                raise StepFailed(f"no {what} within {self.config.timeout_s:g} s")
            time.sleep(self.config.poll_s)

    # -- the journey ----------------------------------------------------------------------
    def run(self) -> list[Step]:
        """Every step in order; stops at the first failure; the cleanup always runs.
        Raises ``ProbeRefused`` (after cleanup) when the tenant is not a test tenant."""
        actions: list[tuple[str, Callable[[Step], None]]] = [
            ("tenant", self.check_tenant), ("reset", self.reset), ("merchant", self.merchant),
            ("consumer", self.consumer), ("courier", self.courier), ("quote", self.quote),
            ("order", self.order), ("confirm", self.confirm), ("ready", self.ready),
            ("dispatch", self.dispatch), ("accept", self.accept), ("pickup", self.pickup),
            ("deliver", self.deliver), ("drive_create", self.drive_create),
            ("drive_dispatch", self.drive_dispatch), ("drive_deliver", self.drive_deliver),
            ("webhook", self.webhook)]
        try:
            for name, action in actions:
                with self._step(name) as step:
                    action(step)
                if step.status == FAIL:
                    break
        finally:
            with self._step("cleanup") as step:
                self.cleanup(step)
        return self.steps

    def check_tenant(self, step: Step) -> None:
        r = self.client.get("/v1/testkit/tenant", headers={
            "Authorization": f"Bearer {self.config.ops_key}",
            "X-Lastmile-Tenant": self.config.tenant})
        if r.status_code == 401:
            raise ProbeRefused(f"{self.client.base_url} does not know the ops key "
                               f"({_problem(r)}): pass --key, or run where "
                               "LASTMILE_DATABASE_URL reaches the deployment's database")
        if r.status_code in (403, 404):
            raise ProbeRefused(f"tenant {self.config.tenant}: {_problem(r)}")
        if r.status_code != 200:
            raise StepFailed(f"GET /v1/testkit/tenant: {_problem(r)}")
        body = r.json()
        if not body.get("test"):
            raise ProbeRefused(f"tenant {body.get('tenant')} is a {body.get('kind')} tenant; "
                               "the probe runs in test tenants only")
        step.detail = f"{body['tenant']} ({body['kind']})"

    def reset(self, step: Step) -> None:
        done = self._ops("POST", "/v1/testkit/reset")
        step.detail = (f"cancelled {len(done['cancelled_order_ids'])} order(s), ended "
                       f"{len(done['ended_courier_ids'])} shift(s) left by earlier runs")

    def merchant(self, step: Step) -> None:
        # Ready in a minute (the shortest preparation): the Drive parcel is then due at once,
        # and the dispatcher's rolling horizon offers it now instead of near its ready time.
        m = self._ops("POST", "/v1/testkit/merchants",
                      json={"template": "pizza", "name": "Probe pizza", "with_key": True,
                            "prep_time_s": 60})
        self._merchant = Party(id=m["id"], key=m["api_key"], data=m)
        self.ids["merchant_id"] = m["id"]
        step.detail = f"{m['id']} in {m['region_id']}"

    def consumer(self, step: Step) -> None:
        m = self._need(self._merchant)
        here = m.data["location"]
        region = next((r for r in self._ops("GET", "/v1/ops/regions")["regions"]
                       if r["id"] == m.data["region_id"]), None)
        if region is None:
            raise StepFailed(f"region {m.data['region_id']} is not listed for the tenant")
        lat = sum(v["lat"] for v in region["polygon"]) / len(region["polygon"])
        lng = sum(v["lng"] for v in region["polygon"]) / len(region["polygon"])
        # Halfway between the merchant and the region's centre: inside, and in range.
        c = self._ops("POST", "/v1/testkit/consumers", json={
            "lat": (here["lat"] + lat) / 2, "lng": (here["lng"] + lng) / 2 + 0.004,
            "name": "Probe consumer", "with_key": True})
        self._consumer = Party(id=c["id"], key=c["api_key"], data=c)
        self.ids["consumer_id"] = c["id"]
        step.detail = c["id"]

    def courier(self, step: Step) -> None:
        here = self._need(self._merchant).data["location"]
        c = self._ops("POST", "/v1/testkit/couriers", json={
            "lat": here["lat"], "lng": here["lng"], "name": "Probe courier",
            "with_key": True})
        self._courier = Party(id=c["id"], key=c["api_key"], data=c)
        self.ids["courier_id"] = c["id"]
        self._ping()
        step.detail = f"{c['id']} on shift {c['shift_id']} at the merchant"

    def _ping(self) -> None:
        courier = self._need(self._courier)
        here = self._need(self._merchant).data["location"]
        self._call("POST", "/v1/courier/location", key=courier.key, json={
            "device_id": courier.data["device_id"], "lat": here["lat"], "lng": here["lng"],
            "accuracy_m": 8.0, "client_ts": self.wall()})
        self._pinged_at = time.monotonic()

    def _order_body(self) -> dict[str, Any]:
        m, c = self._need(self._merchant), self._need(self._consumer)
        home = c.data["addresses"][0]
        return {"merchant_id": m.id, "items": [{"item_id": m.data["items"][0]["id"],
                                                "quantity": 1}],
                "dropoff": {"lat": home["lat"], "lng": home["lng"]}, "require_pin": True}

    def quote(self, step: Step) -> None:
        q = self._call("POST", "/v1/consumer/quotes", key=self._need(self._consumer).key,
                       json=self._order_body())
        total = q["prices"]["total"]
        step.detail = f"total {total['amount_minor']} {total['currency']}, {q['distance_m']} m"

    def order(self, step: Step) -> None:
        o = self._call("POST", "/v1/consumer/orders", key=self._need(self._consumer).key,
                       json=self._order_body(),
                       headers={"Idempotency-Key": f"probe-{secrets.token_hex(8)}"})
        self.ids["order_id"], self.ids["pin"] = o["id"], o.get("dropoff_pin") or ""
        step.detail = f"{o['id']} {o['status']}"

    def confirm(self, step: Step) -> None:
        o = self._call("POST", f"/v1/merchant/orders/{self.ids['order_id']}/confirm",
                       key=self._need(self._merchant).key, json={"prep_estimate_s": 300})
        step.detail = o["status"]

    def ready(self, step: Step) -> None:
        o = self._call("POST", f"/v1/merchant/orders/{self.ids['order_id']}/ready",
                       key=self._need(self._merchant).key)
        step.detail = o["status"]

    def _offer_for(self, order_id: str) -> dict[str, Any] | None:
        """The courier's live offer when it holds ``order_id``; pings meanwhile (every ~5 s)
        so the dispatcher sees the courier fresh."""
        courier = self._need(self._courier)
        got = self._call("GET", "/v1/courier/offer", key=courier.key).get("offer")
        if got and order_id in got["order_ids"]:
            return dict(got)
        if time.monotonic() - self._pinged_at > PING_EVERY_S:
            self._ping()
        return None

    def dispatch(self, step: Step) -> None:
        offer = self._wait(f"offer of order {self.ids['order_id']} to the probe courier",
                           lambda: self._offer_for(self.ids["order_id"]))
        self.ids["offer_id"] = offer["id"]
        step.detail = f"offer {offer['id']}"

    def accept(self, step: Step) -> None:
        o = self._call("POST", f"/v1/courier/offers/{self.ids['offer_id']}/accept",
                       key=self._need(self._courier).key)
        step.detail = o["status"]

    def _courier_move(self, order_id: str, action: str, **kwargs: Any) -> dict[str, Any]:
        return self._call("POST", f"/v1/courier/orders/{order_id}/{action}",
                          key=self._need(self._courier).key, **kwargs)

    def pickup(self, step: Step) -> None:
        self._courier_move(self.ids["order_id"], "arrive")
        step.detail = self._courier_move(self.ids["order_id"], "pickup")["status"]

    def deliver(self, step: Step) -> None:
        order_id = self.ids["order_id"]
        self._courier_move(order_id, "arrive")
        proof: dict[str, Any] = {"photo_ref": "probe.jpg"}
        if self.ids.get("pin"):
            proof["pin"] = self.ids["pin"]
        o = self._courier_move(order_id, "deliver", json=proof)
        if o["status"] != "delivered":
            raise StepFailed(f"order {order_id} is {o['status']} after deliver")
        step.detail = "delivered" + (" with PIN" if "pin" in proof else "")

    def drive_create(self, step: Step) -> None:
        m, c = self._need(self._merchant), self._need(self._consumer)
        hook = self._call("POST", "/v1/drive/webhooks", key=m.key, json={
            "url": self.config.webhook_url, "event_types": [DELIVERED_EVENT]})
        self._endpoint_id, self.ids["webhook_secret"] = hook["id"], hook["secret"]
        home = c.data["addresses"][0]
        external = f"probe-{secrets.token_hex(6)}"
        d = self._call("POST", "/v1/drive/deliveries", key=m.key, json={
            "external_delivery_id": external, "dropoff": {"lat": home["lat"],
                                                          "lng": home["lng"]},
            "dropoff_contact": {"first_name": "Probe"}, "order_value_minor": 1000,
            "proof_required": {"photo": True}})
        self.ids.update(drive_order_id=d["order_id"], delivery_id=d["delivery_id"],
                        external_delivery_id=external)
        # The parcel is ready now (the business says so, as the merchant app would): the
        # dispatcher then offers it at once instead of timing the courier to its estimate.
        ready = self._call("POST", f"/v1/merchant/orders/{d['order_id']}/ready", key=m.key)
        step.detail = f"{external} -> order {d['order_id']} {ready['status']}"

    def drive_dispatch(self, step: Step) -> None:
        order_id = self.ids["drive_order_id"]
        offer = self._wait(f"offer of Drive order {order_id}", lambda: self._offer_for(order_id))
        self._call("POST", f"/v1/courier/offers/{offer['id']}/accept",
                   key=self._need(self._courier).key)
        step.detail = f"offer {offer['id']} accepted"

    def drive_deliver(self, step: Step) -> None:
        order_id = self.ids["drive_order_id"]
        self._courier_move(order_id, "arrive")
        self._courier_move(order_id, "pickup")
        self._courier_move(order_id, "arrive")
        self._call("POST", f"/v1/drive/courier/deliveries/{order_id}/deliver",
                   key=self._need(self._courier).key, json={"photo_ref": "probe.jpg"})
        d = self._call("GET", f"/v1/drive/deliveries/{self.ids['external_delivery_id']}",
                       key=self._need(self._merchant).key)
        if d["status"] != "delivered":
            raise StepFailed(f"Drive delivery is {d['status']} after deliver")
        step.detail = f"{d['status']}, outcome {d['outcome']}"

    def _captures(self) -> list[dict[str, Any]] | None:
        """Captured webhooks of the Drive delivery (any of its ids as the subject)."""
        found: list[dict[str, Any]] = []
        for subject in {self.ids["drive_order_id"], self.ids["delivery_id"],
                        self.ids["external_delivery_id"]}:
            r = self.client.get("/v1/ops/sandbox/captures", params={
                "channel": "webhook", "subject_id": subject, "limit": 50}, headers={
                "Authorization": f"Bearer {self.config.ops_key}",
                "X-Lastmile-Tenant": self.config.tenant})
            if r.status_code == 404 and _code(r) == "not_found":
                raise StepSkipped("sandbox captures not available")
            if r.status_code != 200:
                raise StepFailed(f"GET /v1/ops/sandbox/captures: {_problem(r)}")
            found += [c for c in r.json().get("captures", [])
                      if c.get("event_type") == DELIVERED_EVENT]
        return found or None

    def webhook(self, step: Step) -> None:
        captures = self._wait(f"captured {DELIVERED_EVENT} webhook", self._captures)
        capture = captures[0]
        body, headers = capture.get("body"), capture.get("headers") or {}
        signature = next((v for k, v in headers.items() if k.lower() ==
                          SIGNATURE_HEADER.lower()), None)
        if isinstance(body, str) and signature is not None:
            if not verify(self.ids["webhook_secret"], signature, body.encode(),
                          now=self.wall(), tolerance_s=3600):
                raise StepFailed(f"capture {capture.get('id')}: the signature does not "
                                 "verify under the endpoint's secret")
            step.detail = f"capture {capture.get('id')} signed and verified"
        else:
            step.detail = f"capture {capture.get('id')} ({DELIVERED_EVENT})"

    def cleanup(self, step: Step) -> None:
        """Leave the test tenant as found: the webhook endpoint gone, the courier off shift
        (an order still in hand is cancelled first, so the shift can end)."""
        done = []
        if self._merchant is not None and self._endpoint_id is not None:
            self._call("DELETE", f"/v1/drive/webhooks/{self._endpoint_id}",
                       key=self._merchant.key, ok=(204, 404))
            done.append("webhook endpoint removed")
        if self._courier is not None:
            for key in ("order_id", "drive_order_id"):
                if key in self.ids:
                    self._ops("POST", f"/v1/ops/orders/{self.ids[key]}/cancel",
                              json={"reason": "probe cleanup"}, ok=(200, 409, 422))
            self._call("POST", "/v1/courier/shift/end", key=self._courier.key, ok=(200, 409))
            done.append("courier off shift")
        step.detail = ", ".join(done) or "nothing to clean"

    @staticmethod
    def _need(party: Party | None) -> Party:
        if party is None:
            raise StepFailed("an earlier step did not create this party")
        return party


def _code(r: httpx.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None
