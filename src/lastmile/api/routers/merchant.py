"""Merchants: the menu, incoming orders, confirm with a preparation estimate, ready."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from lastmile.api.deps import Merchant, ServicesDep
from lastmile.api.links import feeds
from lastmile.api.schemas import CancelIn, ConfirmIn, Id, ItemIn, item_out, merchant_out, order_out
from lastmile.app import catalog, fulfilment, queries
from lastmile.core.model import ItemOption
from lastmile.core.orders import OrderStatus

router = APIRouter(prefix="/v1/merchant", tags=["merchant"])


@router.get("/menu")
def menu(svc: ServicesDep, who: Merchant) -> dict[str, Any]:
    merchant = queries.get_merchant(svc, who.subject_id)
    return {"merchant": merchant_out(merchant), "items": [item_out(i) for i in merchant.menu]}


def _upsert(svc: ServicesDep, who: Merchant, item_id: str | None, body: ItemIn) -> dict[str, Any]:
    item = catalog.upsert_item(
        svc, who.subject_id, item_id=item_id, name=body.name, price_minor=body.price_minor,
        options=tuple(ItemOption(id=o.id, name=o.name, price_delta_minor=o.price_delta_minor)
                      for o in body.options),
        available=body.available, actor=who.actor,
    )
    return item_out(item)


@router.post("/menu/items", status_code=201, responses=feeds(
    "item_id", "id", ("put", "/v1/merchant/menu/items/{item_id}"),
    ("delete", "/v1/merchant/menu/items/{item_id}")))
def add_item(svc: ServicesDep, who: Merchant, body: ItemIn) -> dict[str, Any]:
    return _upsert(svc, who, None, body)


@router.put("/menu/items/{item_id}")
def put_item(svc: ServicesDep, who: Merchant, item_id: Id, body: ItemIn) -> dict[str, Any]:
    return _upsert(svc, who, item_id, body)


@router.delete("/menu/items/{item_id}", status_code=204)
def delete_item(svc: ServicesDep, who: Merchant, item_id: Id) -> Response:
    catalog.remove_item(svc, who.subject_id, item_id, actor=who.actor)
    return Response(status_code=204)


@router.get("/orders")
def incoming(
    svc: ServicesDep, who: Merchant,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The merchant's orders, newest first (filter by status, e.g. ``placed``)."""
    return {"orders": [order_out(o) for o in
                       queries.list_orders(svc, who=who, statuses=status, limit=limit)]}


@router.get("/orders/{order_id}")
def get_order(svc: ServicesDep, who: Merchant, order_id: Id) -> dict[str, Any]:
    return order_out(queries.get_order(svc, order_id, who=who))


@router.post("/orders/{order_id}/confirm")
def confirm(svc: ServicesDep, who: Merchant, order_id: Id, body: ConfirmIn) -> dict[str, Any]:
    queries.get_order(svc, order_id, who=who)
    return order_out(fulfilment.confirm_order(svc, order_id, prep_estimate_s=body.prep_estimate_s,
                                              actor=who.actor))


@router.post("/orders/{order_id}/ready")
def ready(svc: ServicesDep, who: Merchant, order_id: Id) -> dict[str, Any]:
    queries.get_order(svc, order_id, who=who)
    return order_out(fulfilment.mark_ready(svc, order_id, actor=who.actor))


@router.post("/orders/{order_id}/cancel")
def cancel(svc: ServicesDep, who: Merchant, order_id: Id, body: CancelIn) -> dict[str, Any]:
    queries.get_order(svc, order_id, who=who)
    return order_out(fulfilment.cancel_order(svc, order_id, reason=body.reason, actor=who.actor))
