"""Consumer-side use cases: quote, place (idempotent), cancel.

A quote is issued with a signed token (``issue_quote``: HMAC under the server key, valid
``quote_ttl_s``) that holds its prices; an order that brings the token back within its
validity pays those prices (``_honoured``), one that brings it later is refused with 409
``quote_expired`` (ask for a new quote). An order without a token is priced when placed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from lastmile.app import eta, eta_history, experiments, payments
from lastmile.app.context import Services, record_transition
from lastmile.app.idempotency import once
from lastmile.app.ports import IdempotencyRecord, UnitOfWork
from lastmile.app.surge import surge_for
from lastmile.app.tenancy import current_tenant
from lastmile.app.tenants import pricing_in
from lastmile.core.errors import Conflict, InvalidInput, NotFound
from lastmile.core.experiments.definition import Context, pricing_with
from lastmile.core.geo import Point
from lastmile.core.ids import ConsumerId, MerchantId, OrderId, RegionId
from lastmile.core.lifecycle import Transition
from lastmile.core.model import CourierStatus, Merchant, Region
from lastmile.core.money import Money
from lastmile.core.orders import (
    AWAITING_COURIER,
    Actor,
    ActorKind,
    Order,
    OrderLine,
    OrderStatus,
    PriceBreakdown,
)
from lastmile.core.payments import ProcessorResult
from lastmile.core.pricing import PricingPolicy, Quote, SupplyDemand, quote
from lastmile.core.signed_tokens import open_fields, sign_fields
from lastmile.core.tenancy import Party, same_world


@dataclass(frozen=True, slots=True, kw_only=True)
class LineRequest:
    item_id: str
    quantity: int
    option_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    consumer_id: str
    merchant_id: str
    lines: tuple[LineRequest, ...]
    dropoff: Point
    tip_minor: int = 0
    require_pin: bool = False
    card_token: str | None = None  # the consumer's card at the processor (app.payments)
    quote_token: str | None = None  # from ``issue_quote``: pay the quoted prices


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedQuote:
    """A quote and the token that holds its prices until ``expires_at``."""

    quote: Quote
    token: str
    expires_at: float


_QUOTE_PURPOSE = "consumer-quote"
_PRICE_KEYS = ("subtotal", "delivery_fee", "service_fee", "small_order_fee", "tax", "tip")


@dataclass(frozen=True, slots=True, kw_only=True)
class Placed:
    order: Order
    replayed: bool


def _lines(merchant: Merchant, requests: tuple[LineRequest, ...]) -> tuple[OrderLine, ...]:
    if not requests:
        raise InvalidInput("empty_order", "an order needs at least one item", field="items")
    lines = []
    for i, req in enumerate(requests):
        item = merchant.item(req.item_id)
        if not item.available:
            raise Conflict("item_unavailable", f"item {item.id} is not available right now")
        unit = item.price
        for option_id in req.option_ids:
            unit = unit + Money(
                amount_minor=item.option(option_id).price_delta_minor, currency=unit.currency
            )
        if not 1 <= req.quantity <= 99:
            raise InvalidInput(
                "invalid_quantity",
                f"quantity must be in [1, 99] (got {req.quantity}) for item {item.id}",
                field=f"items[{i}].quantity",
            )
        lines.append(
            OrderLine(
                item_id=item.id, name=item.name, quantity=req.quantity, unit_price=unit,
                option_ids=req.option_ids,
            )
        )
    return tuple(lines)


# A quote, what it was computed from, and the market it saw (the ETA history's idle couriers).
Priced = tuple[Quote, Merchant, Region, SupplyDemand]


def _load_merchant(uow: UnitOfWork, merchant_id: str) -> tuple[Merchant, Region]:
    merchant = uow.merchants.get(merchant_id)
    if merchant is None:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", field="merchant_id")
    region = uow.regions.get(merchant.region_id)
    if region is None:  # pragma: no cover - guarded by a foreign key
        raise NotFound("region_not_found", f"no region {merchant.region_id}")
    return merchant, region


def supply_demand(uow: UnitOfWork, region_id: str) -> SupplyDemand:
    # Only the waiting statuses: counting every status would scan all the orders the
    # region ever had, on every order placed (a cost that grows with history).
    waiting_statuses = {s.value for s in AWAITING_COURIER | {OrderStatus.PLACED}}
    counts = uow.orders.count_by_status(region_id, statuses=waiting_statuses)
    waiting = sum(counts.values())
    couriers = uow.couriers.count_by_status(region_id)
    return SupplyDemand(open_orders=waiting,
                        available_couriers=couriers.get(CourierStatus.IDLE.value, 0),
                        busy_couriers=couriers.get(CourierStatus.BUSY.value, 0))


def _quote(uow: UnitOfWork, services: Services, req: OrderRequest) -> Priced:
    merchant, region = _load_merchant(uow, req.merchant_id)
    if not merchant.active:
        raise Conflict("merchant_inactive", f"merchant {merchant.id} is not taking orders")
    local = datetime.fromtimestamp(services.clock.now(), ZoneInfo(region.time_zone))
    if not merchant.is_open(local.weekday(), local.time()):
        raise Conflict("merchant_closed",
                       f"merchant {merchant.id} is closed at {local:%a %H:%M} local time")
    if not region.polygon.contains(req.dropoff):
        raise InvalidInput(
            "outside_service_area",
            f"drop-off ({req.dropoff.lat}, {req.dropoff.lng}) is outside region {region.id}",
            field="dropoff",
        )
    lines = _lines(merchant, req.lines)
    subtotal = Money.zero(region.currency)
    for line in lines:
        subtotal = subtotal + line.total
    # The tenant's fees (and its region's) on the deployment's policy, then a running fees
    # experiment's arm for this consumer or region (app.experiments).
    policy = pricing_with(pricing_in(uow, services, region.id), experiments.overrides(
        services, "fees", Context(at_s=services.clock.now(), consumer_id=req.consumer_id,
                                  region_id=region.id), uow=uow))
    supply = supply_demand(uow, region.id)
    q = quote(
        pickup=merchant.location, dropoff=req.dropoff, subtotal=subtotal,
        tip=Money(amount_minor=req.tip_minor, currency=region.currency),
        tax_rate_bp=region.tax_rate_bp, prep_time_s=merchant.prep_time_s,
        supply=supply, now=services.clock.now(), policy=policy,
        surge=surge_for(uow, services, region.id, req.dropoff, policy),
    )
    # The window from the served ETA model (app.eta: the heuristic unless a model file is).
    return eta.serve(services, uow, q, _eta_context(req, merchant, region, supply, policy,
                                                   subtotal, lines)), merchant, region, supply


def _eta_context(req: OrderRequest, merchant: Merchant, region: Region, supply: SupplyDemand,
                 policy: PricingPolicy, subtotal: Money, lines: tuple[OrderLine, ...]
                 ) -> eta.QuoteContext:
    return eta.QuoteContext(merchant=merchant, region=region, dropoff=req.dropoff,
                            supply=supply, policy=policy, consumer_id=req.consumer_id,
                            items=sum(li.quantity for li in lines),
                            subtotal_minor=subtotal.amount_minor)


def get_quote(services: Services, req: OrderRequest) -> Quote:
    with services.uow(read_only=True) as uow:
        return _quote(uow, services, req)[0]


def issue_quote(services: Services, req: OrderRequest) -> IssuedQuote:
    """A quote with a token that holds its prices for the policy's ``quote_ttl_s``.

    The token signs (server key, purpose ``consumer-quote``) who asked, in which tenant,
    for which request (``request_hash``), the prices and the expiry; nothing secret.
    """
    with services.uow(read_only=True) as uow:
        q, _, region, _ = _quote(uow, services, req)
        ttl_s = pricing_in(uow, services, region.id).quote_ttl_s
    expires_at = services.clock.now() + ttl_s
    prices = q.prices.as_minor()
    token = sign_fields({"c": req.consumer_id, "t": current_tenant(), "h": request_hash(req),
                         "exp": expires_at, "cur": region.currency,
                         "p": [prices[k] for k in _PRICE_KEYS]},
                        key=services.signing_key, purpose=_QUOTE_PURPOSE)
    return IssuedQuote(quote=q, token=token, expires_at=expires_at)


def _honoured(services: Services, req: OrderRequest, fresh: Quote) -> PriceBreakdown:
    """The prices of ``req.quote_token`` when it is valid for ``req`` now.

    422 ``invalid_quote_token`` (not ours, or altered), 422 ``quote_mismatch`` (issued for
    another consumer, tenant or request), 409 ``quote_expired`` (past its validity: ask for
    a new quote), 409 ``quote_stale`` (the menu's prices changed since: the goods are
    never sold at a price the merchant no longer asks).
    """
    token = req.quote_token or ""
    fields = open_fields(token, key=services.signing_key, purpose=_QUOTE_PURPOSE)
    if fields is None:
        raise InvalidInput("invalid_quote_token", "quote_token is not a quote this server "
                           "issued, or it was altered", field="quote_token")
    if (fields.get("c"), fields.get("t"), fields.get("h")) != (
            req.consumer_id, current_tenant(), request_hash(req)):
        raise InvalidInput("quote_mismatch", "quote_token was issued for another request "
                           "(consumer, merchant, items, drop-off, tip or PIN differ); ask for a "
                           "new quote", field="quote_token")
    now, expires_at = services.clock.now(), float(fields["exp"])
    if now >= expires_at:
        raise Conflict("quote_expired", f"the quote expired {now - expires_at:.0f} s ago (it "
                       "is valid for the policy's quote_ttl_s); ask for a new quote at POST "
                       "/v1/consumer/quotes", field="quote_token")
    cur = str(fields["cur"])
    held = dict(zip(_PRICE_KEYS, (Money(amount_minor=int(v), currency=cur) for v in fields["p"]),
                    strict=True))
    if held["subtotal"] != fresh.prices.subtotal:
        raise Conflict("quote_stale", f"the items now cost {fresh.prices.subtotal}, the quote "
                       f"said {held['subtotal']}; ask for a new quote", field="quote_token")
    return PriceBreakdown(**held)


def request_hash(req: OrderRequest) -> str:
    body = {
        "merchant_id": req.merchant_id,
        "lines": [[li.item_id, li.quantity, list(li.option_ids)] for li in req.lines],
        "dropoff": [req.dropoff.lat, req.dropoff.lng],
        "tip_minor": req.tip_minor,
        "require_pin": req.require_pin,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _replay(uow: UnitOfWork, scope: str, key: str, digest: str) -> Placed | None:
    seen = uow.idempotency.get(scope, key)
    if seen is None:
        return None
    if seen.request_hash != digest:
        raise Conflict(
            "idempotency_key_reused",
            f"Idempotency-Key {key!r} was used for a different request",
            field="Idempotency-Key",
        )
    order = uow.orders.get(seen.resource_id)
    assert order is not None  # written in the same transaction as the key
    return Placed(order=order, replayed=True)


def place_order(services: Services, req: OrderRequest, *, idempotency_key: str) -> Placed:
    """Create the order once per (consumer, key): a replay returns the first order.

    Two concurrent requests with one key: the database's unique key lets one win;
    the other rolls back everything it wrote and answers with the winner's order.
    With an idempotency cache (several API processes) the second usually waits for
    the first's answer instead (``app.idempotency``); the database still decides.
    """
    if not 1 <= len(idempotency_key) <= 200:
        raise InvalidInput(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1..200 characters (got {len(idempotency_key)})",
            field="Idempotency-Key",
        )
    scope = f"order:{req.consumer_id}"
    digest = request_hash(req)
    return once(services.idempotency_cache, scope=scope, key=idempotency_key,
                request_hash=digest, resource_of=lambda placed: placed.order.id,
                create=lambda: _place(services, req, scope, idempotency_key, digest),
                replay=lambda order_id: _cached(services, order_id))


def _cached(services: Services, order_id: str) -> Placed | None:
    """The order a cached answer names (app.idempotency), read without a write transaction."""
    with services.uow(read_only=True) as uow:
        order = uow.orders.get(order_id)
    return None if order is None else Placed(order=order, replayed=True)


def _place(services: Services, req: OrderRequest, scope: str, idempotency_key: str,
           digest: str) -> Placed:
    # The hold comes first, outside the order's transaction (a processor call never
    # holds the database): a decline (402) leaves nothing behind. A hold whose order then
    # failed to be written is kept, not voided: the client's retry with the same key
    # reuses it (a voided hold would come back as a replay), and an abandoned one expires.
    pay_key = f"place:{scope}:{idempotency_key}"
    held, priced = _authorise(services, req, scope, idempotency_key, pay_key)
    try:
        with services.uow() as uow:
            replay = _replay(uow, scope, idempotency_key, digest)
            if replay is not None:
                return replay
            order = _new_order(uow, services, req, priced=priced)
            if held is not None:
                payments.record_authorisation(uow, services, order_id=order.id, result=held,
                                              idempotency_key=pay_key)
            uow.idempotency.add(IdempotencyRecord(
                scope=scope, key=idempotency_key, request_hash=digest, resource_id=order.id,
                created_at=order.placed_at))
            uow.commit()
            return Placed(order=order, replayed=False)
    except Conflict as exc:
        lost = exc
        if exc.code not in ("idempotency_key_taken", "concurrent_update"):
            raise
    with services.uow(read_only=True) as uow:
        replay = _replay(uow, scope, idempotency_key, digest)
    if replay is None and lost.code == "concurrent_update":
        raise lost  # another race than a doubly submitted placement: 409, retried
    if replay is None:  # pragma: no cover - the winner committed before our insert failed
        raise Conflict("idempotency_key_taken", "retry the request", field="Idempotency-Key")
    return replay


def _authorise(services: Services, req: OrderRequest, scope: str, idempotency_key: str,
               pay_key: str) -> tuple[ProcessorResult | None, Priced | None]:
    """The hold for the order's total and the quote it was taken for (None, None: no
    processor, or a replay of a placed order)."""
    if services.payments is None and services.sandbox_payments is None:
        return None, None
    with services.uow(read_only=True) as uow:
        if uow.idempotency.get(scope, idempotency_key) is not None:
            return None, None  # a replay (or a reused key): the write unit answers it
        if uow.consumers.get(req.consumer_id) is None:  # checked before money is held
            raise NotFound("consumer_not_found", f"no consumer {req.consumer_id}")
        priced = _quote(uow, services, req)
    held = payments.authorise(services, amount=priced[0].prices.total, reference=pay_key,
                              idempotency_key=pay_key, card_token=req.card_token)
    return held, priced


def _new_order(uow: UnitOfWork, services: Services, req: OrderRequest, *,
               priced: Priced | None = None) -> Order:
    """Price and add the order with its ``order.placed`` event; the caller commits.
    ``priced``: the quote its payment was authorised for (the order keeps that price)."""
    consumer = uow.consumers.get(req.consumer_id)
    if consumer is None:
        raise NotFound("consumer_not_found", f"no consumer {req.consumer_id}")
    q, merchant, region, supply = priced or _quote(uow, services, req)
    # Storage isolation already hides other tenants' rows; this is the second wall.
    same_world(Party(what="consumer", id=consumer.id, tenant=consumer.tenant),
               Party(what="merchant", id=merchant.id, tenant=merchant.tenant))
    now = services.clock.now()
    prices = q.prices if req.quote_token is None else _honoured(services, req, q)
    order = Order(
        id=OrderId(services.ids.new("ord")), region_id=RegionId(region.id),
        merchant_id=MerchantId(merchant.id), consumer_id=ConsumerId(req.consumer_id),
        lines=_lines(merchant, req.lines), prices=prices, pickup=merchant.location,
        dropoff=req.dropoff, placed_at=now, eta=q.eta,
        dropoff_pin=f"{services.rng.randrange(10_000):04d}" if req.require_pin else None,
    )
    uow.orders.add(order)
    history = eta_history.capture(uow, services, order=order, region=region,
                                  default_prep_s=merchant.prep_time_s,
                                  idle_couriers=supply.available_couriers,
                                  open_orders=supply.open_orders, features=q.features)
    record_transition(uow, services, region.id, Transition(
        type="order.placed", order_id=order.id, from_status=OrderStatus.PLACED,
        to_status=OrderStatus.PLACED, actor=Actor(kind=ActorKind.CONSUMER, id=req.consumer_id),
        at=now, version=order.version,
        data={"merchant_id": merchant.id, "consumer_id": req.consumer_id,
              "total_minor": prices.total.amount_minor, "currency": region.currency,
              "eta_expected_at": q.eta.expected_at},
    ))
    if services.eta_models is not None:  # a shadow model's estimate, logged (app.eta)
        eta.record_shadow(uow, services, order, q, history.features)
    return order

