"""The pay pipeline configured with the MDRP rules (Reyes et al. 2018, grubhub/mdrplib).

The MDRP evaluator pays every courier of ``couriers.txt`` (one who delivered nothing
too) ``max(pay_per_order x orders delivered, pay_per_hour x shift hours)``, where the
shift is the scheduled one, ``off_time - on_time`` minutes, whatever the courier did in
it, and sums over couriers; it prints the sum in dollars with two decimals.

Here that is the general pipeline with a base per order of ``pay_per_order``, no
distance, time, rush, boost or tip, and a guarantee of ``pay_per_hour`` per hour over
``off_time - on_time`` (the "active" time is the whole scheduled shift). The top-up
line then makes ``total = max(orders x per order, guarantee)``. A shift whose off time
is before its on time has no guarantee (the evaluator's negative one never wins the max).

Rounding: each courier's guarantee is rounded to the cent once. With whole-cent rates
per hour and whole-minute shifts the guarantee is ``rate x minutes / 60``, a whole
number of cents whenever the hourly rate is a multiple of 0.60 (every published
instance pays 15.00/h: 25 cents a minute), and then the total is the evaluator's to the
cent. With other rates each courier's amount can differ from the evaluator's unrounded
float by at most half a cent before its single final rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from lastmile.core.errors import InvalidInput
from lastmile.core.money import Money, total
from lastmile.core.pay.pipeline import DeliveredOrder, PayStatement, ShiftWork, statement
from lastmile.core.pay.policy import PayPolicy


def _cents(value: float | str, name: str) -> int:
    try:
        cents = Decimal(str(value)) * 100
    except InvalidOperation as exc:
        raise InvalidInput("invalid_mdrp_pay", f"{name} must be a number of dollars "
                           f"(got {value!r})", field=name) from exc
    if not cents.is_finite() or cents < 0 or cents != cents.to_integral_value():
        raise InvalidInput("invalid_mdrp_pay",
                           f"{name} must be >= 0 dollars in whole cents (got {value!r})",
                           field=name)
    return int(cents)


def mdrp_policy(*, pay_per_order: float | str, pay_per_hour: float | str,
                currency: str = "USD") -> PayPolicy:
    """The pipeline's policy for an instance's ``pay per order`` and ``guaranteed pay per
    hour`` (dollars, as ``instance_parameters.txt`` gives them)."""
    return PayPolicy(currency=currency,
                     base_per_order_minor=_cents(pay_per_order, "pay per order"),
                     guarantee_per_hour_minor=_cents(pay_per_hour, "guaranteed pay per hour"))


def mdrp_shift(*, courier_id: str, on_time_min: int, off_time_min: int,
               delivered: Iterable[tuple[str, int]]) -> ShiftWork:
    """A courier's MDRP shift: ``delivered`` is ``(order id, drop-off minute)`` pairs."""
    return ShiftWork(
        shift_id=courier_id, courier_id=courier_id,
        active_s=max(off_time_min - on_time_min, 0) * 60,
        orders=tuple(DeliveredOrder(order_id=oid, delivered_at=float(minute * 60))
                     for oid, minute in delivered))


def mdrp_statements(policy: PayPolicy, shifts: Iterable[ShiftWork]) -> tuple[PayStatement, ...]:
    return tuple(statement(policy, s) for s in shifts)


def total_payment(statements: Iterable[PayStatement], currency: str = "USD") -> Money:
    """The sum of the statements' totals: the evaluator's ``total payment``."""
    return total([s.total for s in statements], currency)
