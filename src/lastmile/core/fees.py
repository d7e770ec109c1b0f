"""The delivery fee as a pipeline of pure steps: base -> distance -> small order -> surge -> cap.

Each step takes the running fee (``FeeRun``: the amount so far and its lines) and returns
the next one with one more line, so a quote carries how its fee was made and a reason a
consumer can read (``FeeLine.reason``: "busy nearby: +1.50"). A rule set is the tuple of
steps a sale runs: ``MARKETPLACE`` (a consumer's order) or ``DRIVE`` (a delivery sold on
its own: no small-order fee, since there are no goods of ours to be small).

Only the small-order line is not part of the delivery fee: ``FeeRun.delivery_fee`` is the
total without it, ``FeeRun.small_order_fee`` the line itself (the order's price breakdown
keeps them apart, as before).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from lastmile.core.money import Money, minor_exponent

if TYPE_CHECKING:  # pricing runs these steps: a runtime import would be circular
    from lastmile.core.pricing import PricingPolicy

BASE, DISTANCE, SMALL_ORDER, SURGE, CAP = "base", "distance", "small_order", "surge", "cap"
# The words a consumer reads before the signed amount, per line kind.
_WORDS = {BASE: "delivery", DISTANCE: "distance", SMALL_ORDER: "small order",
          SURGE: "busy nearby", CAP: "fee cap"}


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeInputs:
    """What the fee depends on: the road distance, the goods' subtotal (None for Drive),
    the surge multiplier of the drop-off's cell, and the currency."""

    distance_m: float
    currency: str
    surge: Decimal = Decimal("1.00")
    subtotal: Money | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeLine:
    kind: str
    amount: Money

    @property
    def reason(self) -> str:
        """``"busy nearby: +1.50"``: the kind in words and the signed amount in the
        currency's own decimals (JPY none, KWD three)."""
        return f"{_WORDS.get(self.kind, self.kind)}: {signed(self.amount)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeRun:
    amount: Money
    lines: tuple[FeeLine, ...] = ()

    def add(self, kind: str, amount: Money) -> FeeRun:
        return replace(self, amount=self.amount + amount,
                       lines=(*self.lines, FeeLine(kind=kind, amount=amount)))

    def sum_of(self, *kinds: str) -> Money:
        out = Money.zero(self.amount.currency)
        for line in self.lines:
            if line.kind in kinds:
                out = out + line.amount
        return out

    @property
    def small_order_fee(self) -> Money:
        return self.sum_of(SMALL_ORDER)

    @property
    def delivery_fee(self) -> Money:
        return self.amount - self.small_order_fee

    @property
    def reasons(self) -> tuple[str, ...]:
        """What a consumer reads: every line that is not zero."""
        return tuple(line.reason for line in self.lines if line.amount.amount_minor)


FeeStep = Callable[[FeeRun, FeeInputs, "PricingPolicy"], FeeRun]


def signed(amount: Money) -> str:
    """``+1.50`` / ``-0.25`` / ``+150`` (JPY): the sign, then major units to the minor unit."""
    exp = minor_exponent(amount.currency)
    value = Decimal(abs(amount.amount_minor)).scaleb(-exp)
    return f"{'-' if amount.amount_minor < 0 else '+'}{value:.{exp}f}"


def base(run: FeeRun, inputs: FeeInputs, policy: PricingPolicy) -> FeeRun:
    """The flat part of every delivery: ``base_delivery_fee_minor``."""
    return run.add(BASE, Money(amount_minor=policy.base_delivery_fee_minor,
                               currency=inputs.currency))


def distance(run: FeeRun, inputs: FeeInputs, policy: PricingPolicy) -> FeeRun:
    """``per_km_minor`` for every road km past ``included_km`` (to the metre, rounded once);
    never decreases as the distance grows."""
    extra_km = max(0.0, inputs.distance_m / 1000.0 - policy.included_km)
    per_km = Money(amount_minor=policy.per_km_minor, currency=inputs.currency)
    return run.add(DISTANCE, per_km.times(Decimal(str(round(extra_km, 3)))))


def small_order(run: FeeRun, inputs: FeeInputs, policy: PricingPolicy) -> FeeRun:
    """``small_order_fee_minor`` when the subtotal is under ``small_order_threshold_minor``."""
    small = (inputs.subtotal is not None
             and inputs.subtotal.amount_minor < policy.small_order_threshold_minor)
    return run.add(SMALL_ORDER, Money(amount_minor=policy.small_order_fee_minor if small else 0,
                                      currency=inputs.currency))


def surge(run: FeeRun, inputs: FeeInputs, policy: PricingPolicy) -> FeeRun:
    """``(multiplier - 1)`` times base + distance: surge never touches the small-order fee
    and never discounts (a multiplier under 1 counts as 1)."""
    factor = max(Decimal(0), inputs.surge - 1)
    return run.add(SURGE, run.sum_of(BASE, DISTANCE).times(factor))


def cap(run: FeeRun, inputs: FeeInputs, policy: PricingPolicy) -> FeeRun:
    """The delivery fee (base + distance + surge) never exceeds ``max_delivery_fee_minor``;
    the excess comes off as a negative line. Capping keeps the fee non-decreasing in
    distance (a min of two non-decreasing functions)."""
    excess = run.sum_of(BASE, DISTANCE, SURGE).amount_minor - policy.max_delivery_fee_minor
    return run.add(CAP, Money(amount_minor=-max(0, excess), currency=inputs.currency))


MARKETPLACE: tuple[FeeStep, ...] = (base, distance, small_order, surge, cap)
DRIVE: tuple[FeeStep, ...] = (base, distance, surge, cap)


def run_fee(steps: tuple[FeeStep, ...], inputs: FeeInputs, policy: PricingPolicy) -> FeeRun:
    """Run ``steps`` in order from zero; the result is never negative (every step adds a
    non-negative amount except the cap, which removes at most what the others added)."""
    run = FeeRun(amount=Money.zero(inputs.currency))
    for step in steps:
        run = step(run, inputs, policy)
    return run
