"""Tenant guardrails through the HTTP API (issue 9, item 3): the tenant header, ids of
another tenant on every GET route that takes one, and the sandbox captures endpoint."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from lastmile.adapters.bus.outbox import relay_once
from lastmile.adapters.webhooks.worker import install_drive
from lastmile.api.priorities import app_routes
from lastmile.app import drive, experiments, offers, refunds, webhooks
from lastmile.app.auth import issue_api_key
from lastmile.app.experiments import NewExperiment
from lastmile.app.fulfilment import start_shift
from lastmile.app.ordering import place_order
from lastmile.app.tenancy import acting_as
from lastmile.bootstrap import install_ledger
from lastmile.core.delivery.model import Contact
from lastmile.core.delivery.request import DeliveryRequest
from lastmile.core.experiments.assignment import Variant
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind
from lastmile.core.refunds import Reason, RefundRequest
from lastmile.sim.seed import tenant_region_id
from tenant_helpers import TEST_TENANT, an_order_request, seed_test_tenant

HEADER = "X-Lastmile-Tenant"


@dataclass
class SandboxWorld:
    """The test tenant's parties, keys and one of everything a GET route names by id."""

    keys: dict[str, str]
    ids: dict[str, str]  # path parameter -> an id of the test tenant
    drive_order_id: str  # the Drive delivery's order (assigned to the test courier)


def _pump(api: Any) -> None:
    install_drive(api.platform.container)
    install_ledger(api.platform.container)
    while relay_once(api.platform.services, api.platform.container.bus) > 0:
        pass


@pytest.fixture
def world(api: Any) -> SandboxWorld:
    p = api.platform
    svc = p.services
    tw = seed_test_tenant(p)
    merchant, consumer, courier = tw.merchant_ids[0], tw.consumer_ids[0], tw.courier_ids[0]
    with acting_as(TEST_TENANT):
        keys = {role: issue_api_key(svc, role=role, subject_id=sid)[1]
                for role, sid in (("consumer", consumer), ("merchant", merchant),
                                  ("courier", courier), ("ops", "probe-ops"))}
        order = place_order(svc, an_order_request(p, consumer_id=consumer, merchant_id=merchant),
                            idempotency_key="world-1").order
        refund = refunds.request_refund(svc, consumer, RefundRequest(
            order_id=order.id, reason=Reason.LATE), idempotency_key="world-refund").case
        webhooks.register_endpoint(svc, merchant, url="https://hooks.example.test/h",
                                   event_types=("delivery.created",))
        view = drive.create_delivery(svc, DeliveryRequest(
            merchant_id=merchant, external_delivery_id="probe-ext-1",
            dropoff=Point(lat=37.44, lng=-122.14),
            contact=Contact(first_name="Test", last_name="Probe", phone="+1 555 0199",
                            email="probe@example.test"), order_value_minor=2500))
        who = Actor(kind=ActorKind.COURIER, id=courier)
        shift_id = start_shift(svc, courier, device_id="probe-d1",
                               ends_at=svc.clock.now() + 7200, actor=who).shift_id
        offer = offers.make_offer(svc, courier_id=courier, order_ids=(view.order.id,),
                                  actor=SYSTEM)
        offers.accept_offer(svc, offer.id, actor=who)
        experiment = experiments.create(svc, NewExperiment(
            name="probe-fee", lever="fees", design="ab",
            variants=(Variant(name="control"), Variant(name="treatment"))))
        experiments.start(svc, experiment.id)
    _pump(api)
    with acting_as(TEST_TENANT):
        [message] = webhooks.list_messages(svc, merchant)
    ids = {"order_id": order.id, "merchant_id": merchant, "courier_id": courier,
           "region_id": tenant_region_id(TEST_TENANT), "external_delivery_id": "probe-ext-1",
           "message_id": message.id, "token": view.delivery.tracking_token,
           "account": f"holds:{consumer}", "refund_request_id": refund.id,
           "shift_id": str(shift_id), "experiment_id": experiment.id}
    return SandboxWorld(keys=keys, ids=ids, drive_order_id=view.order.id)


# --- the tenant header -----------------------------------------------------------------

@pytest.mark.parametrize(("who", "path"), [
    ("consumer", "/v1/consumer/orders"), ("merchant", "/v1/merchant/orders"),
    ("courier", "/v1/courier/me"), ("ops", "/v1/ops/regions"),
    ("ops", "/v1/ops/sandbox/captures")])
def test_a_live_key_naming_the_test_tenant_is_refused(api, who, path):
    r = api.client.get(path, headers=api.h(who, **{HEADER: TEST_TENANT}))
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "tenant_not_allowed"


def test_an_ops_key_allowed_to_act_for_test_tenants_is_honoured(api, world):
    svc = api.platform.services
    probe_key = issue_api_key(svc, role="ops", subject_id="prober", acts_for=("doortest:*",))[1]
    h = {"Authorization": f"Bearer {probe_key}"}
    own = api.client.get("/v1/ops/orders", headers=h).json()["orders"]
    acting = api.client.get("/v1/ops/orders", headers={**h, HEADER: TEST_TENANT})
    assert acting.status_code == 200, acting.text
    assert world.ids["order_id"] in {o["id"] for o in acting.json()["orders"]}
    assert world.ids["order_id"] not in {o["id"] for o in own}
    other = api.client.get("/v1/ops/orders", headers={**h, HEADER: "acme:eu"})
    assert other.status_code == 403 and other.json()["code"] == "tenant_not_allowed"


# --- another tenant's ids -----------------------------------------------------------------

_SKIP = {"/ops/dashboard/assets/{name}"}  # a static file name, not an id
_QUERY = {"/v1/ops/regions/{region_id}/couriers/nearest": {"lat": 37.44, "lng": -122.14}}
# Routes whose own-tenant answer is not 200 in this world, and why: the experiment has no
# delivered orders yet, so its analysis is 409 no_observations (found, unlike the 404).
_OWN_STATUS = {"/v1/ops/experiments/{experiment_id}/analysis": 409}


def _id_routes(api: Any) -> list[str]:
    return sorted(path for method, path in app_routes(api.client.app.routes)
                  if method == "GET" and "{" in path and path not in _SKIP)


def _role(path: str) -> str | None:
    if path.startswith("/track/"):
        return None  # public: the token is the credential
    if path.startswith(("/v1/courier/", "/v1/drive/courier/")):
        return "courier"
    if path.startswith(("/v1/merchant/", "/v1/drive/")):
        return "merchant"
    return path.split("/")[2] if path.startswith("/v1/") else "ops"


def _fill(path: str, world: SandboxWorld) -> str:
    ids = dict(world.ids)
    if _role(path) == "courier" or path.startswith("/v1/drive/"):
        ids["order_id"] = world.drive_order_id  # the order the test courier carries
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def test_every_get_route_with_an_id_answers_404_for_another_tenants_id(api, world):
    routes = _id_routes(api)
    assert len(routes) >= 18, routes  # the list is the app's, not a copy that can go stale
    leaks, unchecked = {}, []
    for path in routes:
        role = _role(path)
        url = _fill(path, world)
        query = _QUERY.get(path, {})
        if role is None:  # public: the link's token is the capability, in any tenant
            unchecked.append(path)
            continue
        live = api.client.get(url, params=query, headers=api.h(role))
        if live.status_code != 404:
            leaks[path] = (live.status_code, live.text[:200])
        own = api.client.get(url, params=query,
                             headers={"Authorization": f"Bearer {world.keys[role]}"})
        assert own.status_code == _OWN_STATUS.get(path, 200), (
            path, own.status_code, own.text[:200])
    assert leaks == {}, leaks
    assert unchecked == ["/track/{token}", "/track/{token}.json"]


def test_a_test_couriers_live_position_is_not_on_a_live_tenants_map(api, world):
    """The live store is keyed by region, not tenant: the routes reading it check first
    that the region is the caller's."""
    h = {"Authorization": f"Bearer {world.keys['courier']}"}
    ping = api.client.post("/v1/courier/location", headers=h, json={
        "device_id": "probe-d1", "lat": 37.44, "lng": -122.14, "accuracy_m": 8,
        "client_ts": api.platform.clock.now()})
    assert ping.status_code in (200, 202), ping.text
    url = f"/v1/ops/regions/{world.ids['region_id']}/couriers"
    own = api.client.get(url, headers={"Authorization": f"Bearer {world.keys['ops']}"})
    assert [c["courier_id"] for c in own.json()["couriers"]] == [world.ids["courier_id"]]
    for path, query in ((url, {}), (f"{url}/nearest", {"lat": 37.44, "lng": -122.14})):
        live = api.client.get(path, params=query, headers=api.h("ops"))
        assert live.status_code == 404 and live.json()["code"] == "region_not_found"


# --- sandbox captures --------------------------------------------------------------------

def test_the_captures_endpoint_lists_the_acting_tenants_captured_webhooks(api, world):
    svc = api.platform.services
    with acting_as(TEST_TENANT):
        assert webhooks.send_webhooks_once(svc, _NeverPost()) == 1
    h = {"Authorization": f"Bearer {world.keys['ops']}"}
    r = api.client.get("/v1/ops/sandbox/captures", headers=h, params={
        "channel": "webhook", "subject_id": world.drive_order_id, "limit": 50})
    assert r.status_code == 200, r.text
    [cap] = r.json()["captures"]
    assert set(cap) == {"id", "channel", "target", "event_type", "subject_id", "headers",
                        "body", "created_at"}
    assert (cap["channel"], cap["target"], cap["event_type"], cap["subject_id"]) == (
        "webhook", "https://hooks.example.test/h", "delivery.created", world.drive_order_id)
    assert cap["headers"]["X-Lastmile-Signature"].startswith("t=")
    live = api.client.get("/v1/ops/sandbox/captures", headers=api.h("ops"))
    assert live.status_code == 200 and live.json() == {"captures": []}
    bad = api.client.get("/v1/ops/sandbox/captures", headers=h, params={"channel": "fax"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_channel"
    # The synthetic probe's way: a live ops key allowed to act for the test tenants.
    probe = issue_api_key(svc, role="ops", subject_id="prober", acts_for=("doortest:*",))[1]
    acting = api.client.get("/v1/ops/sandbox/captures", params={"channel": "webhook"},
                            headers={"Authorization": f"Bearer {probe}", HEADER: TEST_TENANT})
    assert acting.status_code == 200 and acting.json()["captures"] == [cap]
    assert cap["created_at"].startswith("20")
    wrong_role = api.client.get("/v1/ops/sandbox/captures",
                                headers={"Authorization": f"Bearer {world.keys['merchant']}"})
    assert wrong_role.status_code == 403


class _NeverPost:
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
        raise AssertionError(f"a test tenant's webhook was posted to {url}")


def test_the_tenant_header_opens_nothing_on_public_routes(api, world):
    """The tracking page takes no key: the link's token is the capability, found in
    whichever tenant holds it (a test tenant's recipient can follow its delivery); a tenant
    header there is ignored, and an unknown token is 404 whatever it says."""
    view = drive.create_delivery(api.platform.services, DeliveryRequest(
        merchant_id=api.platform.seed.merchant_ids[0], external_delivery_id="live-ext-1",
        dropoff=Point(lat=37.44, lng=-122.14),
        contact=Contact(first_name="Ada", last_name="Lovelace", phone="+1 555 0100"),
        order_value_minor=2500))
    header = {HEADER: TEST_TENANT}
    live = api.client.get(f"/track/{view.delivery.tracking_token}.json", headers=header)
    assert live.status_code == 200, live.text
    test = api.client.get(f"/track/{world.ids['token']}.json", headers=header)
    assert test.status_code == 200, test.text
    forged = api.client.get(f"/track/trk_{'0' * 40}.json", headers=header)
    assert forged.status_code == 404
