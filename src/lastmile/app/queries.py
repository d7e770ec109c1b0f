"""Read side: what each side may see, merchants near a point, live counts."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from lastmile.app.aggregates import load_courier, load_order
from lastmile.app.auth import Principal
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.ports import UnitOfWork
from lastmile.core.errors import Forbidden, InvalidInput, NotFound
from lastmile.core.geo import Point, bounding_box, haversine_m
from lastmile.core.model import Consumer, Courier, Merchant, Region
from lastmile.core.orders import Order, OrderStatus
from lastmile.core.page_tokens import decode_token, encode_token, invalid_token

MAX_RADIUS_M = 30_000
MAX_PAGE = 50


def _visible(order: Order, who: Principal) -> bool:
    return {
        "ops": True,
        "consumer": order.consumer_id == who.subject_id,
        "merchant": order.merchant_id == who.subject_id,
        "courier": order.courier_id == who.subject_id,
    }.get(who.role, False)


def _visible_order(uow: UnitOfWork, order_id: str, who: Principal) -> Order:
    order = load_order(uow, order_id)
    if not _visible(order, who):
        # 404, not 403: another side's order ids must not be probeable.
        raise NotFound("order_not_found", f"no order {order_id}", field="order_id")
    return order


def get_order(services: Services, order_id: str, *, who: Principal) -> Order:
    with services.uow(read_only=True) as uow:
        return _visible_order(uow, order_id, who)


def order_history(services: Services, order_id: str, *, who: Principal) -> list[Event]:
    with services.uow(read_only=True) as uow:
        _visible_order(uow, order_id, who)
        return uow.events.for_subject(order_id)


def list_orders(services: Services, *, who: Principal, statuses: Sequence[OrderStatus] | None,
                region_id: str | None = None, limit: int = 50) -> list[Order]:
    """Orders the caller may see, newest first (ops: every order)."""
    if who.role not in ("ops", "consumer", "merchant", "courier"):
        raise Forbidden("actor_not_allowed", f"a {who.role} may not list orders")

    def mine(role: str) -> str | None:
        return who.subject_id if who.role == role else None

    with services.uow(read_only=True) as uow:
        return uow.orders.list(region_id=region_id, statuses=statuses, limit=limit,
                               consumer_id=mine("consumer"), merchant_id=mine("merchant"),
                               courier_id=mine("courier"))


@dataclass(frozen=True, slots=True, kw_only=True)
class MerchantHit:
    merchant: Merchant
    distance_m: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MerchantPage:
    hits: tuple[MerchantHit, ...]
    next_page_token: str | None


def _fingerprint(region_id: str, at: Point, radius_m: int) -> str:
    raw = f"{region_id}|{at.lat:.6f}|{at.lng:.6f}|{radius_m}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _encode(distance_m: int, merchant_id: str, fp: str, key: bytes) -> str:
    return encode_token({"d": distance_m, "id": merchant_id, "q": fp}, key=key)


def _decode(token: str, fp: str, key: bytes) -> tuple[int, str]:
    body = decode_token(token, key=key)
    try:
        distance, merchant_id, query = int(body["d"]), str(body["id"]), str(body["q"])
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise invalid_token() from exc
    if query != fp:
        raise InvalidInput("page_token_mismatch",
                           "page_token belongs to a different query (point, radius or region)",
                           field="page_token")
    return distance, merchant_id


def merchants_near(services: Services, *, region_id: str, at: Point, radius_m: int,
                   limit: int = 20, page_token: str | None = None) -> MerchantPage:
    """Active merchants within ``radius_m`` of ``at``, nearest first, ties by id.

    Pages are keyset-based: the token holds the last (distance, id) shown, so
    merchants added or removed meanwhile never shift or repeat a page.
    """
    if not 1 <= radius_m <= MAX_RADIUS_M:
        raise InvalidInput("invalid_radius", f"radius_m must be in [1, {MAX_RADIUS_M}] "
                           f"(got {radius_m})", field="radius_m")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("invalid_limit", f"limit must be in [1, {MAX_PAGE}] (got {limit})",
                           field="limit")
    fp = _fingerprint(region_id, at, radius_m)
    after = _decode(page_token, fp, services.signing_key) if page_token else None
    with services.uow(read_only=True) as uow:
        if uow.regions.get(region_id) is None:
            raise NotFound("region_not_found", f"no region {region_id}", field="region_id")
        candidates = uow.merchants.in_box(region_id, bounding_box(at, radius_m))
    hits = sorted(
        (MerchantHit(merchant=m, distance_m=round(haversine_m(at, m.location))) for m in candidates
         if m.active),
        key=lambda h: (h.distance_m, h.merchant.id),
    )
    hits = [h for h in hits if h.distance_m <= radius_m
            and (after is None or (h.distance_m, h.merchant.id) > after)]
    page = hits[:limit]
    token = (_encode(page[-1].distance_m, page[-1].merchant.id, fp, services.signing_key)
             if len(hits) > limit else None)
    return MerchantPage(hits=tuple(page), next_page_token=token)


def get_merchant(services: Services, merchant_id: str) -> Merchant:
    with services.uow(read_only=True) as uow:
        merchant = uow.merchants.get(merchant_id)
    if merchant is None:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", field="merchant_id")
    return merchant


def get_courier(services: Services, courier_id: str) -> Courier:
    with services.uow(read_only=True) as uow:
        return load_courier(uow, courier_id)


def get_consumer(services: Services, consumer_id: str) -> Consumer:
    with services.uow(read_only=True) as uow:
        consumer = uow.consumers.get(consumer_id)
    if consumer is None:
        raise NotFound("consumer_not_found", f"no consumer {consumer_id}", field="consumer_id")
    return consumer


def list_regions(services: Services) -> list[Region]:
    with services.uow(read_only=True) as uow:
        return uow.regions.list()


def get_region(services: Services, region_id: str) -> Region:
    """The region, 404 when it is not the current tenant's: routes that read the live store
    (keyed by region, not tenant) ask this first, so no tenant sees another's couriers."""
    with services.uow(read_only=True) as uow:
        region = uow.regions.get(region_id)
    if region is None:
        raise NotFound("region_not_found", f"no region {region_id}", field="region_id")
    return region


def live_counts(services: Services, region_id: str) -> dict[str, dict[str, int]]:
    with services.uow(read_only=True) as uow:
        if uow.regions.get(region_id) is None:
            raise NotFound("region_not_found", f"no region {region_id}", field="region_id")
        orders = uow.orders.count_by_status(region_id)
        couriers = uow.couriers.count_by_status(region_id)
    return {"orders": orders, "couriers": couriers}
