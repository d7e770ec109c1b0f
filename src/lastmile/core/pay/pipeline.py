"""Courier pay as a pipeline of small pure functions (the Kotlin FP post, seed 003).

Per delivered order, in this order:

1. ``base``: ``base_per_order_minor``;
2. ``distance``: ``per_km_minor`` x the order's trip in km (pickup to drop-off);
3. ``time``: ``per_minute_minor`` x the order's trip in minutes (pickup to drop-off);
4. ``rush``: when the drop-off falls inside a rush window, the sum of 1-3 times
   ``rush_multiplier - 1``; like the seed's "multiply by 1.5" it is the last step of the
   earned pay, so it multiplies base, distance and time, never boosts or tips;
5. ``boost``: the flat amount of each boost window the drop-off falls in;
6. ``tip``: 100% of the customer's tip, passed through untouched.

Per shift, ``guarantee``: the guaranteed minimum is ``guarantee_per_hour_minor`` x the
shift's active hours; when the earnings without tips (1-5) fall short of it, a
``guarantee_top_up`` line makes up the difference. Tips come on top of the guarantee,
never towards it, so ``total - tips >= guarantee`` always holds.

Every line carries the order id (``None`` for the shift's top-up), the component, the
amount and a reason a courier can read. Each amount is rounded once, half to even, to
the minor unit (``Money.times``); a line that rounds to zero is left out; a statement's
totals are sums of its lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from lastmile.core.errors import InvalidInput
from lastmile.core.money import Money, total
from lastmile.core.pay.policy import PayPolicy

COMPONENTS = ("base", "distance", "time", "rush", "boost", "tip", "guarantee_top_up")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveredOrder:
    """What pay needs of one delivered order: the trip, the drop-off time, the tip."""

    order_id: str
    delivered_at: float  # epoch seconds (the simulator's: seconds of its clock)
    distance_m: int = 0
    duration_s: int = 0
    tip_minor: int = 0
    # The drop-off's minute of the local day when the caller knows the zone (the region's
    # time zone, daylight saving included); None: the policy's ``utc_offset_min``.
    local_minute: int | None = None

    def __post_init__(self) -> None:
        if self.local_minute is not None and not 0 <= self.local_minute < 1_440:
            raise InvalidInput("invalid_delivered_order",
                               f"local_minute must be in 0..1439 (got {self.local_minute!r}) "
                               f"for order {self.order_id}", field="local_minute")
        for name in ("distance_m", "duration_s", "tip_minor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput("invalid_delivered_order",
                                   f"{name} must be a whole number >= 0 (got {value!r}) "
                                   f"for order {self.order_id}", field=name)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftWork:
    """One courier shift to pay: its active time and the orders delivered in it."""

    shift_id: str
    courier_id: str
    active_s: int
    orders: tuple[DeliveredOrder, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.active_s, bool) or not isinstance(self.active_s, int) \
                or self.active_s < 0:
            raise InvalidInput("invalid_shift",
                               f"active_s must be a whole number of seconds >= 0 "
                               f"(got {self.active_s!r}) for shift {self.shift_id}",
                               field="active_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class PayLine:
    order_id: str | None
    component: str
    amount: Money
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PayStatement:
    """A shift's pay, every line explained. ``earnings`` = lines without tips and top-up."""

    shift_id: str
    courier_id: str
    currency: str
    active_s: int
    orders: int
    lines: tuple[PayLine, ...]
    earnings: Money
    tips: Money
    guarantee: Money
    top_up: Money
    total: Money

    @property
    def guaranteed(self) -> bool:
        """Paid the guaranteed minimum: the top-up was needed."""
        return self.top_up.amount_minor > 0


def share(rate_minor: int, numerator: int, denominator: int, currency: str) -> Money:
    """``rate_minor * numerator / denominator`` minor units, rounded once, half to even.

    The quotient is formed from whole numbers in one Decimal division (exact whenever it
    ends in .5, so the half-even rule sees the true value) and ``Money.times`` rounds it.
    """
    quotient = Decimal(rate_minor * numerator) / Decimal(denominator)
    return Money(amount_minor=1, currency=currency).times(quotient)


# --- the steps: each takes the policy, the order and the lines so far, returns new lines --

Step = Callable[[PayPolicy, DeliveredOrder, tuple[PayLine, ...]], tuple[PayLine, ...]]


def minute_of(policy: PayPolicy, order: DeliveredOrder) -> int:
    """The drop-off's minute of the local day, which the rush and boost windows read."""
    if order.local_minute is not None:
        return order.local_minute
    return policy.minute_of_day(order.delivered_at)


def _fmt(policy: PayPolicy, amount_minor: int) -> str:
    return str(policy.money(amount_minor))


def base_pay(policy: PayPolicy, order: DeliveredOrder, lines: tuple[PayLine, ...]
             ) -> tuple[PayLine, ...]:
    if not policy.base_per_order_minor:
        return lines
    return (*lines, PayLine(order_id=order.order_id, component="base",
                            amount=policy.money(policy.base_per_order_minor),
                            reason="base pay per delivered order"))


def distance_pay(policy: PayPolicy, order: DeliveredOrder, lines: tuple[PayLine, ...]
                 ) -> tuple[PayLine, ...]:
    if not policy.per_km_minor or not order.distance_m:
        return lines
    amount = share(policy.per_km_minor, order.distance_m, 1_000, policy.currency)
    if not amount.amount_minor:
        return lines
    km = Decimal(order.distance_m) / 1000
    return (*lines, PayLine(order_id=order.order_id, component="distance", amount=amount,
                            reason=f"{km:.2f} km at {_fmt(policy, policy.per_km_minor)}/km"))


def time_pay(policy: PayPolicy, order: DeliveredOrder, lines: tuple[PayLine, ...]
             ) -> tuple[PayLine, ...]:
    if not policy.per_minute_minor or not order.duration_s:
        return lines
    amount = share(policy.per_minute_minor, order.duration_s, 60, policy.currency)
    if not amount.amount_minor:
        return lines
    minutes = Decimal(order.duration_s) / 60
    return (*lines, PayLine(
        order_id=order.order_id, component="time", amount=amount,
        reason=f"{minutes:.1f} min at {_fmt(policy, policy.per_minute_minor)}/min"))


def rush_multiplier(policy: PayPolicy, order: DeliveredOrder, lines: tuple[PayLine, ...]
                    ) -> tuple[PayLine, ...]:
    """Multiply what the order earned so far by ``rush_multiplier`` inside a rush window."""
    if policy.multiplier == 1:
        return lines
    minute = minute_of(policy, order)
    window = next((w for w in policy.rush_windows if w.contains(minute)), None)
    if window is None:
        return lines
    so_far = total([ln.amount for ln in lines], policy.currency)
    extra = so_far.times(policy.multiplier - 1)
    if not extra.amount_minor:
        return lines
    return (*lines, PayLine(order_id=order.order_id, component="rush", amount=extra,
                            reason=f"rush hour {window.label()}: x{policy.rush_multiplier}"))


def boosts(policy: PayPolicy, order: DeliveredOrder, lines: tuple[PayLine, ...]
           ) -> tuple[PayLine, ...]:
    minute = minute_of(policy, order)
    extra = tuple(
        PayLine(order_id=order.order_id, component="boost", amount=policy.money(b.amount_minor),
                reason=f"{b.reason} ({b.window.label()})")
        for b in policy.boosts if b.window.contains(minute) and b.amount_minor)
    return (*lines, *extra)


def tip(policy: PayPolicy, order: DeliveredOrder, lines: tuple[PayLine, ...]
        ) -> tuple[PayLine, ...]:
    if not order.tip_minor:
        return lines
    return (*lines, PayLine(order_id=order.order_id, component="tip",
                            amount=policy.money(order.tip_minor),
                            reason="customer tip, passed on in full"))


ORDER_PIPELINE: tuple[Step, ...] = (base_pay, distance_pay, time_pay, rush_multiplier, boosts,
                                    tip)


def order_lines(policy: PayPolicy, order: DeliveredOrder,
                pipeline: tuple[Step, ...] = ORDER_PIPELINE) -> tuple[PayLine, ...]:
    """The pay lines of one delivered order: the steps of ``pipeline`` folded in order."""
    lines: tuple[PayLine, ...] = ()
    for step in pipeline:
        lines = step(policy, order, lines)
    return lines


def guarantee_for(policy: PayPolicy, active_s: int) -> Money:
    """``guarantee_per_hour_minor`` x ``active_s`` / 3600, rounded once half to even."""
    return share(policy.guarantee_per_hour_minor, active_s, 3_600, policy.currency)


def statement(policy: PayPolicy, shift: ShiftWork,
              pipeline: tuple[Step, ...] = ORDER_PIPELINE) -> PayStatement:
    """The pay statement of one shift: every order's lines, then the guarantee top-up.

    Orders are paid in drop-off order (ties by id) so a statement reads as the shift went.
    A shift with no orders is paid the guarantee for its active time, nothing else.
    """
    currency = policy.currency
    ordered = sorted(shift.orders, key=lambda o: (o.delivered_at, o.order_id))
    lines = tuple(ln for o in ordered for ln in order_lines(policy, o, pipeline))
    tips = total([ln.amount for ln in lines if ln.component == "tip"], currency)
    earnings = total([ln.amount for ln in lines if ln.component != "tip"], currency)
    guarantee = guarantee_for(policy, shift.active_s)
    top_up = (guarantee - earnings).max(Money.zero(currency))
    if top_up.amount_minor:
        hours = Decimal(shift.active_s) / 3600
        lines = (*lines, PayLine(
            order_id=None, component="guarantee_top_up", amount=top_up,
            reason=(f"guaranteed {_fmt(policy, policy.guarantee_per_hour_minor)}/h x "
                    f"{hours:.2f} active h = {guarantee}; earned {earnings} without tips")))
    return PayStatement(
        shift_id=shift.shift_id, courier_id=shift.courier_id, currency=currency,
        active_s=shift.active_s, orders=len(ordered), lines=lines, earnings=earnings, tips=tips,
        guarantee=guarantee, top_up=top_up, total=earnings + top_up + tips)
