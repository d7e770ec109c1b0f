"""Consumers: browse merchants, quote, order (idempotently), follow and cancel orders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from lastmile.api.deps import Consumer, ServicesDep
from lastmile.api.links import feeds
from lastmile.api.schemas import (
    CancelIn,
    Id,
    Lat,
    Lng,
    OrderIn,
    event_out,
    item_out,
    merchant_out,
    order_out,
    quote_out,
)
from lastmile.app import fulfilment, ordering, queries
from lastmile.core.geo import Point
from lastmile.core.orders import OrderStatus

router = APIRouter(prefix="/v1/consumer", tags=["consumer"])


def _request(who_id: str, body: OrderIn) -> ordering.OrderRequest:
    return ordering.OrderRequest(
        consumer_id=who_id, merchant_id=body.merchant_id,
        lines=tuple(ordering.LineRequest(item_id=li.item_id, quantity=li.quantity,
                                         option_ids=tuple(li.option_ids)) for li in body.items),
        dropoff=Point(lat=body.dropoff.lat, lng=body.dropoff.lng), tip_minor=body.tip_minor,
        require_pin=body.require_pin, card_token=body.card_token,
    )


@router.get("/merchants")
def merchants_near(
    svc: ServicesDep, who: Consumer, lat: Lat, lng: Lng,
    radius_m: Annotated[int, Query(ge=1, le=queries.MAX_RADIUS_M)] = 5_000,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 20,
    page_token: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Active merchants nearest first (ties by id); follow ``next_page_token`` for more."""
    page = queries.merchants_near(
        svc, region_id=queries.get_consumer(svc, who.subject_id).region_id, at=Point(lat=lat, lng=lng),
        radius_m=radius_m, limit=limit, page_token=page_token,
    )
    return {"merchants": [merchant_out(h.merchant, h.distance_m) for h in page.hits],
            "next_page_token": page.next_page_token}


@router.get("/merchants/{merchant_id}/menu")
def menu(svc: ServicesDep, who: Consumer, merchant_id: Id) -> dict[str, Any]:
    merchant = queries.get_merchant(svc, merchant_id)
    return {"merchant": merchant_out(merchant),
            "items": [item_out(i) for i in merchant.menu if i.available]}


@router.post("/quotes")
def quote(svc: ServicesDep, who: Consumer, body: OrderIn) -> dict[str, Any]:
    """Fee breakdown and delivery window for a would-be order."""
    return quote_out(ordering.get_quote(svc, _request(who.subject_id, body)))


@router.post("/orders", status_code=201, responses=feeds(
    "order_id", "id", *((m, "/v1/consumer/orders/{order_id}" + tail) for m, tail in (
        ("get", ""), ("get", "/events"), ("post", "/cancel"))),
    ("post", "/v1/merchant/orders/{order_id}/confirm"), statuses=(201, 200)))
def place_order(
    svc: ServicesDep, who: Consumer, body: OrderIn, response: Response,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> dict[str, Any]:
    """Place an order. A replay with the same ``Idempotency-Key`` returns the same order (200)."""
    placed = ordering.place_order(svc, _request(who.subject_id, body),
                                  idempotency_key=idempotency_key)
    if placed.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return order_out(placed.order, show_pin=True)


@router.get("/orders")
def my_orders(
    svc: ServicesDep, who: Consumer,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    orders = queries.list_orders(svc, who=who, statuses=status, limit=limit)
    return {"orders": [order_out(o, show_pin=True) for o in orders]}


@router.get("/orders/{order_id}")
def get_order(svc: ServicesDep, who: Consumer, order_id: Id) -> dict[str, Any]:
    return order_out(queries.get_order(svc, order_id, who=who), show_pin=True)


@router.get("/orders/{order_id}/events")
def order_events(svc: ServicesDep, who: Consumer, order_id: Id) -> dict[str, Any]:
    return {"events": [event_out(e) for e in queries.order_history(svc, order_id, who=who)]}


@router.post("/orders/{order_id}/cancel")
def cancel(svc: ServicesDep, who: Consumer, order_id: Id, body: CancelIn) -> dict[str, Any]:
    queries.get_order(svc, order_id, who=who)
    return order_out(fulfilment.cancel_order(svc, order_id, reason=body.reason, actor=who.actor))
