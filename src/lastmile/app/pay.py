"""Pay statements of live courier shifts (docs/pay.md).

A shift is read from the courier's history (``courier.shift_started`` and
``courier.shift_ended`` events, paired by ``shift_id``); its orders are the courier's
delivered orders (orders table) whose drop-off falls inside the shift. The pay pipeline
(``core.pay``) turns them into a statement: active time = shift start to shift end (now,
for the shift still running: the statement so far); per order the trip is merchant to
drop-off as the crow flies and picked-up to delivered; the tip is the order's tip; the
rush and boost windows are read in the region's time zone. The policy is the
deployment's (``Services.pay``, ``LASTMILE_PAY_POLICY``) with the current tenant's
``pay`` overrides (tenant config), in the region's currency.

Nothing here writes: ``shift_statement`` returns a value that the ledger can post later.
Only Restaurant deliveries (orders) are paid here; Drive deliveries are not yet.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lastmile.app.aggregates import load_courier
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.ports import UnitOfWork
from lastmile.app.tenants import config_of, tenant_in
from lastmile.core.errors import Forbidden, InvalidInput, NotFound
from lastmile.core.geo import haversine_m
from lastmile.core.model import Courier
from lastmile.core.money import Money, total
from lastmile.core.orders import Actor, ActorKind, Order, OrderStatus
from lastmile.core.pay import DeliveredOrder, PayPolicy, PayStatement, ShiftWork, statement
from lastmile.core.pay.pipeline import order_lines

MAX_STATEMENTS = 50
MAX_SHIFT_ORDERS = 5_000  # delivered orders read per courier (newest first)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftSpan:
    shift_id: str
    courier_id: str
    started_at: float
    ended_at: float | None  # None: still on shift


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftPay:
    span: ShiftSpan
    statement: PayStatement


def shift_spans(courier_id: str, events: Iterable[Event]) -> list[ShiftSpan]:
    """The courier's shifts from its history, oldest first (pure)."""
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    for e in events:
        shift_id = e.data.get("shift_id")
        if not isinstance(shift_id, str):
            continue
        if e.type == "courier.shift_started":
            started.setdefault(shift_id, e.occurred_at)
        elif e.type == "courier.shift_ended":
            ended.setdefault(shift_id, e.occurred_at)
    return sorted((ShiftSpan(shift_id=sid, courier_id=courier_id, started_at=at,
                             ended_at=ended.get(sid)) for sid, at in started.items()),
                  key=lambda s: (s.started_at, s.shift_id))


def _local_minute(at: float, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(at, zone)
    return local.hour * 60 + local.minute


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def paid_order(order: Order, zone: ZoneInfo) -> DeliveredOrder:
    """What pay needs of a delivered order (pure but for the time-zone table)."""
    assert order.delivered_at is not None  # callers pass delivered orders only
    duration = order.delivered_at - order.picked_up_at if order.picked_up_at else 0.0
    return DeliveredOrder(
        order_id=order.id, delivered_at=order.delivered_at,
        distance_m=round(haversine_m(order.pickup, order.dropoff)),
        duration_s=max(round(duration), 0), tip_minor=order.prices.tip.amount_minor,
        local_minute=_local_minute(order.delivered_at, zone))


def shift_work(span: ShiftSpan, orders: Sequence[Order], *, now: float,
               time_zone: str) -> ShiftWork:
    """The shift's work: its active time and the orders delivered within it (pure)."""
    end = span.ended_at if span.ended_at is not None else now
    zone = _zone(time_zone)
    inside = tuple(paid_order(o, zone) for o in orders
                   if o.status is OrderStatus.DELIVERED and o.delivered_at is not None
                   and o.courier_id == span.courier_id and span.started_at <= o.delivered_at <= end)
    return ShiftWork(shift_id=span.shift_id, courier_id=span.courier_id,
                     active_s=max(math.floor(end - span.started_at), 0), orders=inside)


def region_policy(policy: PayPolicy, currency: str) -> PayPolicy:
    """The deployment's policy in the region's currency (its rates are minor units of it)."""
    return policy if policy.currency == currency else dataclasses.replace(policy,
                                                                          currency=currency)


def _statements(uow: UnitOfWork, services: Services, courier: Courier,
                spans: Sequence[ShiftSpan]) -> list[ShiftPay]:
    region = uow.regions.get(courier.region_id)
    if region is None:
        raise NotFound("region_not_found", f"no region {courier.region_id}", field="region_id")
    policy = region_policy(config_of(tenant_in(uow, services)).pay_policy(services.pay),
                           region.currency)
    orders = uow.orders.list(courier_id=courier.id, statuses=[OrderStatus.DELIVERED],
                             limit=MAX_SHIFT_ORDERS)
    now = services.clock.now()
    return [ShiftPay(span=s, statement=statement(
        policy, shift_work(s, orders, now=now, time_zone=region.time_zone))) for s in spans]


def shift_statement(services: Services, shift_id: str, *, actor: Actor,
                    courier_id: str | None = None) -> ShiftPay:
    """The pay statement of one shift. A courier reads only its own shifts (another's is
    not found); ops name the courier."""
    if actor.kind is ActorKind.COURIER:
        if courier_id is not None and courier_id != actor.id:
            raise Forbidden("not_yourself", f"courier {actor.id} may not read {courier_id}")
        courier_id = actor.id
    elif actor.kind not in (ActorKind.OPS, ActorKind.SYSTEM) or courier_id is None:
        raise Forbidden("not_allowed", f"{actor.kind.value} may not read pay statements")
    with services.uow(read_only=True) as uow:
        courier = load_courier(uow, courier_id)
        spans = [s for s in shift_spans(courier.id, uow.events.for_subject(courier.id))
                 if s.shift_id == shift_id]
        if not spans:
            raise NotFound("shift_not_found", f"no shift {shift_id} for courier {courier_id}",
                           field="shift_id")
        return _statements(uow, services, courier, spans)[0]


def trip_pay(uow: UnitOfWork, services: Services, order: Order) -> Money | None:
    """The pipeline's pay for a delivered order's trip, tip excluded (the capture credits
    the tip to the courier): what the ledger posts as courier pay. None when the order is
    not a delivered one or its region is gone."""
    if order.status is not OrderStatus.DELIVERED or order.delivered_at is None:
        return None
    region = uow.regions.get(order.region_id)
    if region is None:
        return None
    policy = region_policy(config_of(tenant_in(uow, services)).pay_policy(services.pay),
                           region.currency)
    lines = order_lines(policy, paid_order(order, _zone(region.time_zone)))
    return total([ln.amount for ln in lines if ln.component != "tip"], region.currency)


def shift_top_up(uow: UnitOfWork, services: Services, courier_id: str,
                 shift_id: str) -> PayStatement | None:
    """The statement of an ended shift (for its guarantee top-up), or None when the courier
    or the shift is not found in this tenant."""
    courier = uow.couriers.get(courier_id)
    if courier is None:
        return None
    spans = [s for s in shift_spans(courier.id, uow.events.for_subject(courier.id))
             if s.shift_id == shift_id and s.ended_at is not None]
    return _statements(uow, services, courier, spans)[0].statement if spans else None


def courier_statements(services: Services, courier_id: str, *, limit: int = 10
                       ) -> list[ShiftPay]:
    """The statements of the courier's last ``limit`` shifts, newest first (ops)."""
    if not 1 <= limit <= MAX_STATEMENTS:
        raise InvalidInput("invalid_limit",
                           f"limit must be in 1..{MAX_STATEMENTS} (got {limit})", field="limit")
    with services.uow(read_only=True) as uow:
        courier = load_courier(uow, courier_id)
        spans = shift_spans(courier.id, uow.events.for_subject(courier.id))[-limit:][::-1]
        return _statements(uow, services, courier, spans)
