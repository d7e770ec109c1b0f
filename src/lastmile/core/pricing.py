"""Quotes: the fee breakdown and the delivery window, from supply and demand.

Fees follow the seed's account (000): a distance-based delivery fee, a
service fee as a share of the subtotal, a small-order fee under a threshold,
and a surge multiplier on the delivery fee when open orders outrun couriers.
A delivery sold on its own (Drive, ``delivery_quote``) costs the delivery fee
and the tip only.

The delivery fee itself is a pipeline of pure steps (``core.fees``: base, distance,
small order, surge, cap) whose lines the quote carries; the surge multiplier is the
drop-off cell's (``core.surge``) when the caller passes one, else the region-wide
``surge_multiplier`` of ``supply``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal

from lastmile.core import fees
from lastmile.core.errors import InvalidInput
from lastmile.core.eta import engine, travel
from lastmile.core.eta.features import EtaEstimate, EtaFeatures
from lastmile.core.eta.travel import ROAD_FACTOR as ROAD_FACTOR  # the one road factor
from lastmile.core.fees import FeeInputs, FeeLine, run_fee
from lastmile.core.geo import Point
from lastmile.core.money import Money
from lastmile.core.orders import EtaWindow, PriceBreakdown


@dataclass(frozen=True, slots=True, kw_only=True)
class PricingPolicy:
    base_delivery_fee_minor: int = 199
    per_km_minor: int = 60
    included_km: float = 2.0
    service_fee_bp: int = 1_000
    service_fee_min_minor: int = 99
    service_fee_max_minor: int = 999
    small_order_threshold_minor: int = 1_000
    small_order_fee_minor: int = 200
    max_distance_m: float = 12_000.0
    # Surge: open orders per available courier above `surge_threshold` raises the
    # delivery fee by `surge_slope` per unit, in steps of 0.25, capped.
    surge_threshold: float = 1.5
    surge_slope: float = 0.5
    surge_cap: float = 2.5
    # Surge per H3 cell (core.surge): resolution 7 cells have ~1.4 km edges, so a cell and
    # its ring (k = 1) span ~4-5 km around a drop-off, what a bicycle covers in the ~15 min
    # a pickup may take. (Resolution 8's ~1.5 km ring held too few orders per ring in the
    # simulator's 10 km city: the black-friday scenario's surge barely rose.) Rounds every
    # `surge_round_s`; the ratio is smoothed with weight `surge_smoothing` on the new count,
    # the multiplier moves by <= `surge_max_step` per round.
    surge_h3_resolution: int = 7
    surge_ring_k: int = 1
    surge_round_s: int = 60
    surge_smoothing: float = 0.5
    surge_max_step: float = 0.25
    # The delivery fee (base + distance + surge) never exceeds this.
    max_delivery_fee_minor: int = 5_000
    quote_ttl_s: int = 300  # a consumer's quote holds its price this long
    # The travel model's default speed (core.eta.travel: a bicycle's) unless overridden.
    courier_speed_mps: float = travel.DEFAULT_SPEED_MPS
    pickup_leg_s: int = 300  # typical time for a courier to reach the merchant
    # Courier time one order takes in effect (bundles and stacks share a trip): with no free
    # courier, one frees up every cycle / busy couriers. Measured (core.eta.engine).
    courier_cycle_s: int = round(engine.DEFAULT_HEURISTIC.courier_cycle_s)
    service_s: int = round(travel.SERVICE_S)  # handover at pickup and at the door
    # The window (the ETA engine's 80% interval) as multiples of the expected duration:
    # measured on the simulator (docs/eta.md, bench/eta_calibration.py).
    window_low: float = engine.DEFAULT_HEURISTIC.p10_ratio
    window_high: float = engine.DEFAULT_HEURISTIC.p90_ratio
    # Consumer quotes from ``heuristic-3`` (core.eta.queue: the courier queue played forward
    # from the couriers' routes and the waiting orders, app.eta_queue); False: the heuristic
    # above (``heuristic-2``, from counts). A model file's incumbent (app.eta) wins over both.
    eta_queue: bool = False

    def __post_init__(self) -> None:
        """The rules a policy keeps, whether built from settings or a tenant's overrides
        (``core.tenant_config``): each breach names the field, the rule and the value."""
        for name, low, strict in _POLICY_BOUNDS:
            value = getattr(self, name)
            if not math.isfinite(value) or value < low or (strict and value == low):
                raise InvalidInput("invalid_policy", f"{name} must be {'>' if strict else '>='} "
                                   f"{low} (got {value})", field=name)
        if self.service_fee_bp > 10_000:
            raise InvalidInput("invalid_policy", f"service_fee_bp must be <= 10000 (got "
                               f"{self.service_fee_bp})", field="service_fee_bp")
        if self.service_fee_min_minor > self.service_fee_max_minor:
            raise InvalidInput("invalid_policy", f"service_fee_min_minor must be <= "
                               f"service_fee_max_minor ({self.service_fee_max_minor}) (got "
                               f"{self.service_fee_min_minor})", field="service_fee_min_minor")
        if self.surge_h3_resolution > 15 or self.surge_ring_k > 5:
            raise InvalidInput("invalid_policy", "surge_h3_resolution must be <= 15 and "
                               f"surge_ring_k <= 5 (got {self.surge_h3_resolution} and "
                               f"{self.surge_ring_k})", field="surge_h3_resolution")
        if self.surge_smoothing > 1:
            raise InvalidInput("invalid_policy", f"surge_smoothing must be <= 1 (got "
                               f"{self.surge_smoothing})", field="surge_smoothing")
        if not self.window_low <= 1.0 <= self.window_high:
            raise InvalidInput("invalid_policy", f"window_low must be <= 1 <= window_high (got "
                               f"{self.window_low} and {self.window_high})", field="window_low")


# (field, lower bound, bound excluded): money and times are never negative; a speed, a
# distance limit, a cycle and the window's low bound must be positive; surge never discounts;
# every bound is finite (the window's high end too: it is the ETA engine's p90 ratio).
_POLICY_BOUNDS: tuple[tuple[str, float, bool], ...] = (
    ("base_delivery_fee_minor", 0, False), ("per_km_minor", 0, False),
    ("included_km", 0, False), ("service_fee_bp", 0, False),
    ("service_fee_min_minor", 0, False), ("service_fee_max_minor", 0, False),
    ("small_order_threshold_minor", 0, False), ("small_order_fee_minor", 0, False),
    ("max_distance_m", 0, True), ("surge_threshold", 0, False), ("surge_slope", 0, False),
    ("surge_cap", 1, False), ("courier_speed_mps", 0, True), ("pickup_leg_s", 0, False),
    ("courier_cycle_s", 0, True), ("service_s", 0, False), ("window_low", 0, True),
    ("window_high", 1, False),
    ("surge_h3_resolution", 0, False), ("surge_ring_k", 0, False), ("surge_round_s", 0, True),
    ("surge_smoothing", 0, True), ("surge_max_step", 0, True),
    ("max_delivery_fee_minor", 0, False), ("quote_ttl_s", 0, True),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SupplyDemand:
    """Orders waiting for a courier, couriers free now, couriers busy with orders."""

    open_orders: int
    available_couriers: int
    busy_couriers: int = 0

    def __post_init__(self) -> None:
        if min(self.open_orders, self.available_couriers, self.busy_couriers) < 0:
            raise InvalidInput("invalid_supply", "supply and demand counts must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    prices: PriceBreakdown
    eta: EtaWindow
    distance_m: int
    surge_multiplier: Decimal
    # How the delivery fee was made (core.fees), and what a consumer reads of it.
    fee_lines: tuple[FeeLine, ...] = ()
    # The ETA engine's answer behind ``eta`` (seconds from the quote; core.eta.engine).
    estimate: EtaEstimate | None = None
    # The features a learned model was served from (app.eta.serve; None under the
    # heuristic): the placement's history record reuses them rather than reading them again.
    features: EtaFeatures | None = None

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(line.reason for line in self.fee_lines if line.amount.amount_minor)


def surge_multiplier(sd: SupplyDemand, policy: PricingPolicy) -> Decimal:
    """1.00 when supply keeps up; rises in 0.25 steps with orders per courier, capped.

    No courier at all with open orders is treated as maximal pressure.
    """
    if sd.open_orders == 0:
        return Decimal("1.00")
    ratio = sd.open_orders / sd.available_couriers if sd.available_couriers else float("inf")
    raw = 1.0 + policy.surge_slope * max(0.0, ratio - policy.surge_threshold)
    raw = min(raw, policy.surge_cap)
    steps = int(raw * 4) / 4  # floor to the 0.25 step: the fee never jumps on noise
    return Decimal(str(steps)).quantize(Decimal("0.01"))


def delivery_fee(distance_m: float, currency: str, surge: Decimal, policy: PricingPolicy) -> Money:
    """Base fee plus a per-km charge past the included distance, times surge, capped
    (``core.fees.DRIVE``: the delivery fee alone).

    Never decreases as distance grows (per_km_minor >= 0).
    """
    inputs = FeeInputs(distance_m=distance_m, currency=currency, surge=surge)
    return run_fee(fees.DRIVE, inputs, policy).delivery_fee


def service_fees(subtotal: Money, policy: PricingPolicy) -> tuple[Money, Money]:
    """(service fee, small-order fee): a share of the subtotal within [min, max], and a flat
    fee when the subtotal is under the small-order threshold."""
    cur = subtotal.currency
    service = subtotal.basis_points(policy.service_fee_bp)
    service = service.max(Money(amount_minor=policy.service_fee_min_minor, currency=cur))
    service = service.min(Money(amount_minor=policy.service_fee_max_minor, currency=cur))
    small_minor = (policy.small_order_fee_minor
                   if subtotal.amount_minor < policy.small_order_threshold_minor else 0)
    return service, Money(amount_minor=small_minor, currency=cur)


def quote(
    *,
    pickup: Point,
    dropoff: Point,
    subtotal: Money,
    tip: Money,
    tax_rate_bp: int,
    prep_time_s: int,
    supply: SupplyDemand,
    now: float,
    policy: PricingPolicy,
    surge: Decimal | None = None,
) -> Quote:
    """The consumer's price and window for delivering ``subtotal`` from pickup to dropoff.

    The delivery and small-order fees come from the ``core.fees.MARKETPLACE`` pipeline at
    ``surge`` (the drop-off cell's multiplier; None: the region-wide one of ``supply``).
    Raises InvalidInput when the drop-off is beyond ``max_distance_m`` or the
    tip is negative. Tax applies to the subtotal and fees, not to the tip.
    """
    distance_m = _trip_m(pickup, dropoff, tip, policy)
    cur = subtotal.currency
    surge = surge_multiplier(supply, policy) if surge is None else surge
    service = service_fees(subtotal, policy)[0]
    run = run_fee(fees.MARKETPLACE, FeeInputs(distance_m=distance_m, currency=cur, surge=surge,
                                              subtotal=subtotal), policy)
    fee, small = run.delivery_fee, run.small_order_fee
    tax = (subtotal + fee + service + small).basis_points(tax_rate_bp)
    prices = PriceBreakdown(
        subtotal=subtotal, delivery_fee=fee, service_fee=service, small_order_fee=small,
        tax=tax, tip=tip,
    )
    return Quote(
        prices=prices,
        eta=window_of(est := eta_estimate(distance_m, prep_time_s, policy, supply), now),
        distance_m=round(distance_m),
        surge_multiplier=surge,
        fee_lines=run.lines,
        estimate=est,
    )


def delivery_quote(
    *,
    pickup: Point,
    dropoff: Point,
    tip: Money,
    prep_time_s: int,
    supply: SupplyDemand,
    now: float,
    policy: PricingPolicy,
    surge: Decimal | None = None,
) -> Quote:
    """The price and window of a delivery sold on its own (Drive): the delivery fee and the tip.

    The parcel is the business's own goods, so there is no subtotal, and with it no
    service fee or small-order fee (they pay for the marketplace a consumer orders
    through) and no tax on the goods' value. The fee is the marketplace's delivery fee for
    the same trip (distance and surge); the window is computed as for any order. Raises
    InvalidInput like ``quote`` (too far, negative tip). Its own rule set: ``core.fees.DRIVE``.
    """
    distance_m = _trip_m(pickup, dropoff, tip, policy)
    surge = surge_multiplier(supply, policy) if surge is None else surge
    run = run_fee(fees.DRIVE, FeeInputs(distance_m=distance_m, currency=tip.currency,
                                        surge=surge), policy)
    return Quote(
        prices=delivery_prices(fee=run.delivery_fee, tip=tip),
        eta=window_of(est := eta_estimate(distance_m, prep_time_s, policy, supply), now),
        distance_m=round(distance_m),
        surge_multiplier=surge,
        fee_lines=run.lines,
        estimate=est,
    )


def delivery_prices(*, fee: Money, tip: Money) -> PriceBreakdown:
    """The breakdown of a delivery sold on its own: ``fee`` as the delivery fee, the tip, and
    zero for every line that belongs to a sale of goods (subtotal, service, small order, tax)."""
    zero = Money.zero(fee.currency)
    return PriceBreakdown(subtotal=zero, delivery_fee=fee, service_fee=zero,
                          small_order_fee=zero, tax=zero, tip=tip)


def _trip_m(pickup: Point, dropoff: Point, tip: Money, policy: PricingPolicy) -> float:
    """The road distance of the trip; refuses a negative tip or a trip past the limit."""
    if tip.amount_minor < 0:
        raise InvalidInput("invalid_tip", f"tip must be >= 0 (got {tip.amount_minor})", field="tip")
    distance_m = travel.road_m(pickup, dropoff)
    if distance_m > policy.max_distance_m:
        raise InvalidInput(
            "out_of_range",
            f"drop-off is {distance_m / 1000:.1f} km by road from the merchant; "
            f"the limit is {policy.max_distance_m / 1000:.1f} km",
            field="dropoff",
        )
    return distance_m


def heuristic_params(policy: PricingPolicy) -> engine.HeuristicParams:
    """The ETA heuristic with this policy's (a tenant's) pickup leg, cycle and window."""
    return replace(engine.DEFAULT_HEURISTIC, pickup_leg_s=float(policy.pickup_leg_s),
                   courier_cycle_s=float(policy.courier_cycle_s),
                   p10_ratio=policy.window_low, p90_ratio=policy.window_high)


def courier_wait_s(supply: SupplyDemand, policy: PricingPolicy) -> float:
    """Expected time until a courier reaches the merchant for a new order
    (``core.eta.engine.courier_delay_s`` with this policy's leg and cycle).

    A free courier for every waiting order: the pickup leg. Otherwise the order
    queues behind ``open_orders - available_couriers + 1`` others for a courier
    to free up; busy couriers free up one every ``courier_cycle_s / busy``
    seconds (with none busy either, a full cycle each). Never less than the leg.
    """
    return float(engine.courier_delay_s(supply.open_orders, supply.available_couriers,
                                        supply.busy_couriers, heuristic_params(policy)))


def eta_estimate(distance_m: float, prep_time_s: int, policy: PricingPolicy,
                 supply: SupplyDemand | None = None) -> EtaEstimate:
    """The ETA engine's estimate for a trip of ``distance_m`` road metres (seconds from
    now): the later of food and courier, then the ride and handovers, with its 80%
    interval. No supply snapshot: a free courier (the pickup leg)."""
    sd = supply or SupplyDemand(open_orders=0, available_couriers=1)
    return engine.quote_estimate(
        distance_m=distance_m, prep_s=prep_time_s, waiting=sd.open_orders,
        idle=sd.available_couriers, busy=sd.busy_couriers, speed_mps=policy.courier_speed_mps,
        service_s=policy.service_s, params=heuristic_params(policy))


def window_of(estimate: EtaEstimate, now: float) -> EtaWindow:
    """The quoted window of an estimate made at ``now``: p10, point and p90 as epoch s."""
    return EtaWindow(low_at=now + estimate.p10_s, expected_at=now + estimate.point_s,
                     high_at=now + estimate.p90_s)


def eta_window(distance_m: float, prep_time_s: int, now: float, policy: PricingPolicy,
               supply: SupplyDemand | None = None) -> EtaWindow:
    """Expected door time: the later of food and courier, then the drive and handovers.

    The window spreads around it by ``window_low`` / ``window_high`` of the duration
    (``eta_estimate`` as epoch seconds).
    """
    return window_of(eta_estimate(distance_m, prep_time_s, policy, supply), now)
