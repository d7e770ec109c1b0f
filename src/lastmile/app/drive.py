"""Drive: the delivery API for businesses (quote -> accept -> create, update, cancel, prove).

A delivery is an ordinary order, placed and confirmed through the core
lifecycle in one transaction: one line item ``delivery``, the business (or a
given address) as pickup, the drop-off contact as a stand-in consumer
(``drive_<delivery id>``; no consumer account matches it). The ``deliveries``
row holds what only Drive has (the declared order value among it) and maps the
caller's ``external_delivery_id`` to the order.

Pricing: a delivery is priced as a delivery (``core.pricing.delivery_quote``,
called once, in ``_price``): the business pays the delivery fee and its tip,
never the marketplace's service or small-order fee, nor tax on the value of its
own goods. The quote holds that breakdown, the order carries it (subtotal,
service fee, small-order fee and tax are zero, so its total is fee + tip), and
the API, the webhooks and ``DeliveryView.fee`` read the fee from it.
"""

from __future__ import annotations

import secrets  # capability tokens: never from the injectable, possibly seeded, rng
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from lastmile.app import eta_history
from lastmile.app.aggregates import apply_command, load_order
from lastmile.app.context import Services, new_event, record, record_transition
from lastmile.app.fulfilment import release_courier
from lastmile.app.idempotency import once
from lastmile.app.ordering import supply_demand
from lastmile.app.pins import check_dropoff_pin
from lastmile.app.ports import UnitOfWork
from lastmile.app.retry import retrying
from lastmile.app.surge import surge_for
from lastmile.app.tenants import pricing_in
from lastmile.core.delivery.model import (
    Contact,
    Delivery,
    DriveQuote,
    ProofRequirement,
    TimeWindow,
    Undeliverable,
)
from lastmile.core.delivery.proof import GivenProof, check_proof, check_undeliverable_action
from lastmile.core.delivery.request import (
    DeliveryRequest,
    request_doc,
    request_from_doc,
    request_hash,
)
from lastmile.core.delivery.windows import validate_windows
from lastmile.core.errors import Conflict, InvalidInput, NotFound
from lastmile.core.eta import travel
from lastmile.core.eta.travel import ride_s, trip_s
from lastmile.core.geo import Point
from lastmile.core.ids import ConsumerId, MerchantId, OrderId, RegionId
from lastmile.core.lifecycle import Cancel, Confirm, Deliver, Transition
from lastmile.core.model import Merchant, Region
from lastmile.core.money import Money
from lastmile.core.orders import (
    COURIER_BEFORE_PICKUP,
    SYSTEM,
    Actor,
    ActorKind,
    DeliveryProof,
    EtaWindow,
    Order,
    OrderLine,
    OrderStatus,
    PriceBreakdown,
)
from lastmile.core.pricing import Quote, delivery_prices, delivery_quote

QUOTE_TTL_S = 300  # a quote holds its price for 5 minutes, as Drive APIs do
MAX_PAGE = 100
_EDITABLE = frozenset({OrderStatus.PLACED, OrderStatus.CONFIRMED, OrderStatus.READY,
                       OrderStatus.UNASSIGNED}) | COURIER_BEFORE_PICKUP


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryView:
    delivery: Delivery
    order: Order
    replayed: bool = False

    @property
    def fee(self) -> Money:
        """What the business pays for the delivery, besides its tip."""
        return self.order.prices.delivery_fee


def _merchant(uow: UnitOfWork, merchant_id: str) -> tuple[Merchant, Region]:
    merchant = uow.merchants.get(merchant_id)
    if merchant is None:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", field="merchant_id")
    if not merchant.active:
        raise Conflict("merchant_inactive", f"merchant {merchant_id} is not active")
    region = uow.regions.get(merchant.region_id)
    assert region is not None  # guarded by a foreign key
    return merchant, region


def _price(uow: UnitOfWork, services: Services, req: DeliveryRequest) -> tuple[Quote, Region, Point]:
    """Validate the request against the world now and price it (core.pricing.quote)."""
    merchant, region = _merchant(uow, req.merchant_id)
    pickup = req.pickup or merchant.location
    for name, point in (("pickup", pickup), ("dropoff", req.dropoff)):
        if not region.polygon.contains(point):
            raise InvalidInput("outside_service_area",
                               f"{name} ({point.lat}, {point.lng}) is outside region {region.id}",
                               field=name)
    check_undeliverable_action(req.proof, req.undeliverable_action.value)
    # The tenant's fees (and its region's) on the deployment's policy; Drive's own rule set
    # (core.fees.DRIVE: the delivery fee, surge of the drop-off's cell, cap; no small order).
    policy = pricing_in(uow, services, region.id)
    now = services.clock.now()
    lead_s = 0.0 if req.pickup_window is None else req.pickup_window.start_at - now
    q = delivery_quote(pickup=pickup, dropoff=req.dropoff,
                       tip=Money(amount_minor=req.tip_minor, currency=region.currency),
                       prep_time_s=max(merchant.prep_time_s, int(lead_s)),
                       supply=supply_demand(uow, region.id), now=now, policy=policy,
                       surge=surge_for(uow, services, region.id, req.dropoff, policy))
    travel_s = trip_s(q.distance_m, speed_mps=policy.courier_speed_mps,
                      service_s=policy.service_s)
    validate_windows(pickup=req.pickup_window, dropoff=req.dropoff_window, now=now,
                     travel_s=travel_s)
    return q, region, pickup


def quote_delivery(services: Services, req: DeliveryRequest) -> DriveQuote:
    """Price a delivery and hold the price for ``QUOTE_TTL_S`` under its external id."""
    with services.uow() as uow:
        if uow.deliveries.by_external(req.merchant_id, req.external_delivery_id) is not None:
            raise Conflict("delivery_exists",
                           f"delivery {req.external_delivery_id!r} already exists",
                           field="external_delivery_id")
        q, region, _ = _price(uow, services, req)
        now = services.clock.now()
        held = DriveQuote(
            merchant_id=req.merchant_id, external_delivery_id=req.external_delivery_id,
            request_hash=request_hash(req), request=request_doc(req), currency=region.currency,
            prices_minor=q.prices.as_minor(), eta=(q.eta.low_at, q.eta.expected_at, q.eta.high_at),
            distance_m=q.distance_m, created_at=now, expires_at=now + QUOTE_TTL_S)
        uow.drive_quotes.put(held)
        uow.commit()
        return held


def _race_safe(create: Callable[[], DeliveryView]) -> DeliveryView:
    """Run ``create``; when a concurrent request inserted the same external id first, run it
    again: it then answers as a replay (same body) or ``external_delivery_id_reused``."""
    try:
        return create()
    except Conflict as exc:
        if exc.code != "external_delivery_id_taken":
            raise
    return create()


def accept_quote(services: Services, merchant_id: str, external_delivery_id: str, *,
                 tip_minor: int | None = None) -> DeliveryView:
    """Create the delivery at the quoted price; a repeat accept returns the same delivery."""
    return _race_safe(lambda: _accept(services, merchant_id, external_delivery_id, tip_minor))


def _accept(services: Services, merchant_id: str, external_delivery_id: str,
            tip_minor: int | None) -> DeliveryView:
    with services.uow() as uow:
        held = uow.drive_quotes.get(merchant_id, external_delivery_id)
        if held is None:
            raise NotFound("quote_not_found", f"no quote for {external_delivery_id!r}",
                           field="external_delivery_id")
        req = request_from_doc(held.request)
        if tip_minor is not None:
            req = replace(req, tip_minor=tip_minor)
        replay = _replay(uow, req)
        if replay is not None:
            return replay
        if services.clock.now() > held.expires_at:
            raise Conflict("quote_expired", f"the quote for {external_delivery_id!r} expired at "
                           f"{held.expires_at:.0f}; ask for a new one", field="external_delivery_id")
        view = _create(uow, services, req, locked=held)
        uow.drive_quotes.put(replace(held, accepted=True))
        uow.commit()
        return view


def create_delivery(services: Services, req: DeliveryRequest) -> DeliveryView:
    """Create once per (business, external_delivery_id): same body -> same delivery, else 409.

    Safe under concurrency: of two simultaneous creates one inserts, the other
    (refused by the unique key, its order rolled back) answers as a replay.
    """
    def create() -> DeliveryView:
        with services.uow() as uow:
            replay = _replay(uow, req)
            if replay is not None:
                return replay
            view = _create(uow, services, req, locked=None)
            uow.commit()
            return view

    def cached(_delivery_id: str) -> DeliveryView | None:
        with services.uow(read_only=True) as uow:
            return _replay(uow, req)

    return once(services.idempotency_cache, scope=f"drive:{req.merchant_id}",
                key=req.external_delivery_id, request_hash=request_hash(req),
                resource_of=lambda view: view.delivery.id, replay=cached,
                create=lambda: _race_safe(create))


def _replay(uow: UnitOfWork, req: DeliveryRequest) -> DeliveryView | None:
    seen = uow.deliveries.by_external(req.merchant_id, req.external_delivery_id)
    if seen is None:
        return None
    if seen.request_hash != request_hash(req):
        raise Conflict("external_delivery_id_reused",
                       f"external_delivery_id {req.external_delivery_id!r} was used for a "
                       "different request", field="external_delivery_id")
    return DeliveryView(delivery=seen, order=load_order(uow, seen.order_id), replayed=True)


def _locked_prices(held: DriveQuote, tip_minor: int) -> tuple[PriceBreakdown, EtaWindow]:
    """The held quote's fee with the tip given at acceptance."""
    cur = held.currency
    prices = delivery_prices(fee=Money(amount_minor=held.fee_minor, currency=cur),
                             tip=Money(amount_minor=tip_minor, currency=cur))
    low, expected, high = held.eta
    return prices, EtaWindow(low_at=low, expected_at=expected, high_at=high)


def _create(uow: UnitOfWork, services: Services, req: DeliveryRequest, *,
            locked: DriveQuote | None) -> DeliveryView:
    q, region, pickup = _price(uow, services, req)
    prices, eta = (q.prices, q.eta) if locked is None else _locked_prices(locked, req.tip_minor)
    now = services.clock.now()
    delivery_id = services.ids.new("dlv")
    order = Order(
        id=OrderId(services.ids.new("ord")), region_id=RegionId(region.id),
        merchant_id=MerchantId(req.merchant_id), consumer_id=ConsumerId(f"drive_{delivery_id}"),
        lines=(OrderLine(item_id="delivery", name="delivery", quantity=1,
                         unit_price=prices.subtotal),),
        prices=prices, pickup=pickup, dropoff=req.dropoff, placed_at=now, eta=eta,
        dropoff_pin=f"{services.rng.randrange(10_000):04d}" if req.proof.pin else None,
    )
    uow.orders.add(order)
    merchant = uow.merchants.get(req.merchant_id)
    assert merchant is not None  # _price found it in this transaction
    eta_history.capture(uow, services, order=order, region=region,
                        default_prep_s=merchant.prep_time_s, channel=eta_history.DRIVE)
    business = Actor(kind=ActorKind.MERCHANT, id=req.merchant_id)
    record_transition(uow, services, region.id, Transition(
        type="order.placed", order_id=order.id, from_status=OrderStatus.PLACED,
        to_status=OrderStatus.PLACED, actor=business, at=now, version=order.version,
        data={"merchant_id": req.merchant_id, "channel": "drive", "delivery_id": delivery_id,
              "external_delivery_id": req.external_delivery_id,
              "total_minor": prices.total.amount_minor, "currency": region.currency,
              "eta_expected_at": eta.expected_at}))
    # The business hands the parcel over ready-made: confirm at once so dispatch sees it.
    prep_s = min(4 * 3600, max(60, round(eta.expected_at - now - ride_s(
        q.distance_m, pricing_in(uow, services).courier_speed_mps))))
    order = apply_command(uow, services, order, Confirm(prep_estimate_s=prep_s), business)
    delivery = Delivery(
        id=delivery_id, merchant_id=req.merchant_id,
        external_delivery_id=req.external_delivery_id, order_id=order.id,
        request_hash=request_hash(req), pickup=pickup, dropoff=req.dropoff, contact=req.contact,
        order_value_minor=req.order_value_minor, tip_minor=req.tip_minor,
        tracking_token=f"trk_{secrets.token_hex(20)}", created_at=now,
        pickup_window=req.pickup_window, dropoff_window=req.dropoff_window,
        instructions=req.instructions, contactless=req.contactless,
        undeliverable_action=req.undeliverable_action, proof=req.proof)
    uow.deliveries.add(delivery)
    return DeliveryView(delivery=delivery, order=order)


def _owned(uow: UnitOfWork, merchant_id: str, external_delivery_id: str) -> DeliveryView:
    d = uow.deliveries.by_external(merchant_id, external_delivery_id)
    if d is None:
        raise NotFound("delivery_not_found", f"no delivery {external_delivery_id!r}",
                       field="external_delivery_id")
    return DeliveryView(delivery=d, order=load_order(uow, d.order_id))


def get_delivery(services: Services, merchant_id: str, external_delivery_id: str) -> DeliveryView:
    with services.uow(read_only=True) as uow:
        return _owned(uow, merchant_id, external_delivery_id)


def list_deliveries(services: Services, merchant_id: str, *, limit: int = 20,
                    after: tuple[float, str] | None = None) -> list[DeliveryView]:
    """The business's deliveries, newest first, keyset-paged by (created_at, id)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("invalid_limit", f"limit must be in [1, {MAX_PAGE}] (got {limit})",
                           field="limit")
    with services.uow(read_only=True) as uow:
        return [DeliveryView(delivery=d, order=load_order(uow, d.order_id))
                for d in uow.deliveries.page(merchant_id, limit=limit, after=after)]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryChanges:
    """Fields a business may change before pickup; None leaves a field as it is."""

    instructions: str | None = None
    contact: Contact | None = None
    contactless: bool | None = None
    tip_minor: int | None = None
    pickup_window: TimeWindow | None = None
    dropoff_window: TimeWindow | None = None


@retrying
def update_delivery(services: Services, merchant_id: str, external_delivery_id: str,
                    changes: DeliveryChanges) -> DeliveryView:
    """Change drop-off details, tip or windows; refused (409) once the parcel is picked up."""
    with services.uow() as uow:
        d, order = (v := _owned(uow, merchant_id, external_delivery_id)).delivery, v.order
        if order.status not in _EDITABLE:
            raise Conflict("not_editable", f"delivery {external_delivery_id!r} is "
                           f"{order.status.value}; it can be changed only before pickup",
                           current_state=order.status.value)
        given = {f.name: getattr(changes, f.name) for f in fields(changes)
                 if getattr(changes, f.name) is not None}
        nxt = replace(d, **given, updated_at=services.clock.now())
        if changes.pickup_window is not None or changes.dropoff_window is not None:
            policy = pricing_in(uow, services)
            travel_s = travel.travel_s(nxt.pickup, nxt.dropoff, speed_mps=policy.courier_speed_mps,
                                       service_s=policy.service_s)
            validate_windows(pickup=nxt.pickup_window, dropoff=nxt.dropoff_window,
                             now=services.clock.now(), travel_s=travel_s)
        if changes.tip_minor is not None and changes.tip_minor != order.prices.tip.amount_minor:
            tip = Money(amount_minor=changes.tip_minor, currency=order.currency)
            changed = replace(order, prices=replace(order.prices, tip=tip),
                              version=order.version + 1)
            uow.orders.save(changed, expected_version=order.version)
            order = changed
        nxt = uow.deliveries.save(nxt)
        record(uow, services, new_event(
            services, type="delivery.updated", region_id=order.region_id, subject_id=order.id,
            actor_kind="merchant", actor_id=merchant_id,
            data={"fields": sorted(given), "tip_minor": order.prices.tip.amount_minor}))
        uow.commit()
        return DeliveryView(delivery=nxt, order=order)


@retrying
def cancel_delivery(services: Services, merchant_id: str, external_delivery_id: str, *,
                    reason: str) -> DeliveryView:
    """Cancel by the business; charges and refusals follow ``core.lifecycle`` (no cancel after pickup)."""
    with services.uow() as uow:
        d, order = (v := _owned(uow, merchant_id, external_delivery_id)).delivery, v.order
        actor = Actor(kind=ActorKind.MERCHANT, id=merchant_id)
        order = apply_command(uow, services, order, Cancel(reason=reason), actor)
        release_courier(uow, services, v.order.courier_id, order.id)
        uow.commit()
        return DeliveryView(delivery=d, order=order)


@retrying
def courier_deliver(services: Services, order_id: str, *, given: GivenProof,
                    actor: Actor) -> DeliveryView:
    """Deliver a Drive order, refusing (422 ``proof_missing``) without the required proofs;
    wrong PINs are counted and lock PIN delivery (``app.pins``)."""
    check_dropoff_pin(services, order_id, pin=given.pin, actor=actor)
    with services.uow() as uow:
        d = drive_of(uow, order_id)
        check_proof(d.proof, given)
        note = given.note or (f"signature:{given.signature_ref}" if given.signature_ref else None)
        proof = DeliveryProof(photo_ref=given.photo_ref, pin=given.pin, note=note)
        return _finish(uow, services, d, Deliver(proof=proof), actor,
                       replace(d, outcome="delivered", signature_ref=given.signature_ref))


@retrying
def courier_undeliverable(services: Services, order_id: str, *, reason: str,
                          photo_ref: str | None, actor: Actor) -> DeliveryView:
    """Nobody can take it: apply the business's choice (leave at door, return, dispose)."""
    with services.uow() as uow:
        d = drive_of(uow, order_id)
        order = load_order(uow, order_id)
        if order.courier_id != actor.id and actor.kind is ActorKind.COURIER:
            raise NotFound("order_not_found", f"no order {order_id}", field="order_id")
        if order.status is not OrderStatus.AT_DROPOFF:
            raise Conflict("not_at_dropoff", f"order {order_id} is {order.status.value}; "
                           "report it undeliverable from the drop-off",
                           current_state=order.status.value)
        action = d.undeliverable_action
        record(uow, services, new_event(
            services, type="delivery.undeliverable", region_id=order.region_id,
            subject_id=order.id, actor_kind=actor.kind.value, actor_id=actor.id,
            data={"reason": reason, "action": action.value}))
        if action is Undeliverable.LEAVE_AT_DOOR:
            check_proof(ProofRequirement(photo=True), GivenProof(photo_ref=photo_ref))
            proof = DeliveryProof(photo_ref=photo_ref, note=f"left at door: {reason}")
            return _finish(uow, services, d, Deliver(proof=proof), actor,
                           replace(d, outcome="left_at_door"))
        outcome = "disposed" if action is Undeliverable.DISPOSE else "returned_to_pickup"
        return _finish(uow, services, d, Cancel(reason=f"undeliverable ({outcome}): {reason}"),
                       SYSTEM, replace(d, outcome=outcome))


def drive_of(uow: UnitOfWork, order_id: str) -> Delivery:
    d = uow.deliveries.by_order(order_id)
    if d is None:
        raise NotFound("delivery_not_found", f"order {order_id} is not a Drive delivery",
                       field="order_id")
    return d


def _finish(uow: UnitOfWork, services: Services, d: Delivery, command: Deliver | Cancel,
            actor: Actor, nxt: Delivery) -> DeliveryView:
    order = load_order(uow, d.order_id)
    done = apply_command(uow, services, order, command, actor)
    release_courier(uow, services, order.courier_id, order.id)
    uow.deliveries.save(replace(nxt, updated_at=services.clock.now()))
    uow.commit()
    return DeliveryView(delivery=nxt, order=done)
