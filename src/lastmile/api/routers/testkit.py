"""The testkit over HTTP: test parties and orders in a TEST tenant (ops keys only).

An ops key acts for the test tenant with ``X-Lastmile-Tenant`` (its ``acts_for`` must
match) or belongs to it. Every route but ``GET /v1/testkit/tenant`` refuses a live tenant
with 403 ``not_a_test_tenant`` (``app.testkit``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from lastmile.api.deps import Ops, ServicesDep
from lastmile.api.schemas import (
    Id,
    Lat,
    Line,
    Lng,
    Strict,
    item_out,
    merchant_out,
    order_out,
    quote_out,
)
from lastmile.app import testkit
from lastmile.app.tenants import current
from lastmile.core.model import Consumer, Courier, Vehicle

router = APIRouter(prefix="/v1/testkit", tags=["testkit"])


class PartyIn(Strict):
    region_id: Id | None = None
    lat: Lat | None = None
    lng: Lng | None = None
    name: Line | None = Field(default=None, min_length=1, max_length=200)
    with_key: bool = False


class MerchantIn(PartyIn):
    template: Line = "pizza"
    prep_time_s: int = Field(default=600, ge=60, le=7200)


class CourierIn(PartyIn):
    vehicle: Vehicle = Field(default=Vehicle.BICYCLE, strict=False)  # a JSON string
    shift_s: int = Field(default=3600, ge=600, le=16 * 3600)
    auto_accept: bool = False


class AutoAcceptIn(Strict):
    auto_accept: bool


class TestOrderIn(Strict):
    consumer_id: Id
    merchant_id: Id
    item_ids: list[Id] = Field(default_factory=list, max_length=20)
    tip_minor: int = Field(default=0, ge=0, le=1_000_000)
    require_pin: bool = False
    idempotency_key: Line | None = Field(default=None, min_length=1, max_length=200)


def _key(created: testkit.Created[Any]) -> dict[str, Any]:
    return {} if created.api_key is None else {"api_key": created.api_key}


def _consumer_out(c: Consumer) -> dict[str, Any]:
    return {"id": c.id, "region_id": c.region_id, "name": c.name,
            "addresses": [{"label": a.label, "lat": a.location.lat, "lng": a.location.lng}
                          for a in c.addresses]}


def _courier_out(c: Courier) -> dict[str, Any]:
    loc = c.location
    return {"id": c.id, "region_id": c.region_id, "name": c.name, "vehicle": c.vehicle.value,
            "status": c.status.value, "shift_id": c.shift_id, "device_id": c.device_id,
            "location": None if loc is None else {"lat": loc.lat, "lng": loc.lng}}


@router.get("/tenant")
def tenant(svc: ServicesDep, who: Ops) -> dict[str, Any]:
    """The tenant this key acts for and its kind (the probe checks it is a test tenant)."""
    t = current(svc)
    return {"tenant": t.id, "kind": t.kind.value, "test": t.is_test,
            "templates": sorted(testkit.TEMPLATES)}


@router.post("/consumers", status_code=201)
def create_consumer(svc: ServicesDep, who: Ops, body: PartyIn) -> dict[str, Any]:
    """A test consumer living at (lat, lng), or at a random point of the region."""
    made = testkit.create_consumer(svc, region_id=body.region_id, lat=body.lat, lng=body.lng,
                                   name=body.name, with_key=body.with_key)
    return {**_consumer_out(made.party), **_key(made)}


@router.post("/merchants", status_code=201)
def create_merchant(svc: ServicesDep, who: Ops, body: MerchantIn) -> dict[str, Any]:
    """A test merchant with a template's menu (``GET /v1/testkit/tenant`` lists them)."""
    made = testkit.create_merchant(svc, template=body.template, region_id=body.region_id,
                                   lat=body.lat, lng=body.lng, name=body.name,
                                   prep_time_s=body.prep_time_s, with_key=body.with_key)
    return {**merchant_out(made.party), "items": [item_out(i) for i in made.party.menu],
            **_key(made)}


@router.post("/couriers", status_code=201)
def create_courier(svc: ServicesDep, who: Ops, body: CourierIn,
                   request: Request) -> dict[str, Any]:
    """A test courier on shift at (lat, lng), seen by the next dispatch round; with
    ``auto_accept`` its offers are accepted by themselves."""
    made = testkit.create_courier(svc, live=request.app.state.container.live,
                                  region_id=body.region_id, lat=body.lat, lng=body.lng,
                                  name=body.name, vehicle=body.vehicle, shift_s=body.shift_s,
                                  auto_accept=body.auto_accept, with_key=body.with_key)
    return {**_courier_out(made.party), "auto_accept": body.auto_accept, **_key(made)}


@router.put("/couriers/{courier_id}/auto-accept")
def auto_accept(svc: ServicesDep, who: Ops, courier_id: Id,
                body: AutoAcceptIn) -> dict[str, Any]:
    testkit.set_auto_accept(svc, courier_id, body.auto_accept)
    return {"courier_id": courier_id, "auto_accept": body.auto_accept}


@router.post("/orders", status_code=201)
def place_order(svc: ServicesDep, who: Ops, body: TestOrderIn) -> dict[str, Any]:
    """Quote and place an order for a test consumer from a test merchant."""
    placed = testkit.place_order(svc, consumer_id=body.consumer_id,
                                 merchant_id=body.merchant_id, item_ids=body.item_ids,
                                 tip_minor=body.tip_minor, require_pin=body.require_pin,
                                 idempotency_key=body.idempotency_key)
    return {"quote": quote_out(placed.quote), "order": order_out(placed.order, show_pin=True),
            "replayed": placed.replayed}


@router.post("/reset")
def reset(svc: ServicesDep, who: Ops, request: Request) -> dict[str, Any]:
    """Cancel the tenant's orders no courier holds and end its idle couriers' shifts."""
    done = testkit.reset(svc, request.app.state.container.live)
    return {"cancelled_order_ids": list(done.cancelled_order_ids),
            "ended_courier_ids": list(done.ended_courier_ids)}
