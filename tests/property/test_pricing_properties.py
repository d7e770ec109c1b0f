"""Invariants of the delivery fee (issue 10): it never falls as distance grows, is never
negative, and never moves by more than the configured step between two smoothing rounds."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from lastmile.core import fees
from lastmile.core.fees import FeeInputs, run_fee
from lastmile.core.geo import Point
from lastmile.core.money import Money
from lastmile.core.pricing import PricingPolicy, SupplyDemand, quote
from lastmile.core.surge import advance, multiplier_at

POLICIES = st.builds(
    PricingPolicy,
    base_delivery_fee_minor=st.integers(0, 2_000), per_km_minor=st.integers(0, 500),
    included_km=st.floats(0, 5), small_order_threshold_minor=st.integers(0, 3_000),
    small_order_fee_minor=st.integers(0, 1_000), surge_threshold=st.floats(0, 4),
    surge_slope=st.floats(0, 3), surge_cap=st.floats(1, 4),
    surge_smoothing=st.floats(0.01, 1), surge_max_step=st.floats(0.01, 1),
    max_delivery_fee_minor=st.integers(0, 10_000),
)
SURGE = st.decimals(min_value=Decimal(1), max_value=Decimal(4), places=2)
CURRENCY = st.sampled_from(["USD", "JPY", "KWD"])
CELL = "8828308281fffff"


@given(POLICIES, st.floats(0, 12_000), st.floats(0, 12_000), SURGE,
       st.integers(0, 5_000), CURRENCY, st.sampled_from([fees.MARKETPLACE, fees.DRIVE]))
def test_fee_never_falls_as_distance_grows_and_is_never_negative(policy, a, b, surge, subtotal,
                                                                 cur, steps):
    near, far = sorted((a, b))

    def fee(d):
        inputs = FeeInputs(distance_m=d, currency=cur, surge=surge,
                           subtotal=Money(amount_minor=subtotal, currency=cur))
        return run_fee(steps, inputs, policy)

    lo, hi = fee(near), fee(far)
    assert 0 <= lo.amount.amount_minor <= hi.amount.amount_minor
    assert 0 <= lo.delivery_fee.amount_minor <= hi.delivery_fee.amount_minor
    assert hi.delivery_fee.amount_minor <= max(policy.max_delivery_fee_minor, 0)
    assert sum(line.amount.amount_minor for line in hi.lines) == hi.amount.amount_minor


@given(POLICIES, st.floats(0, 0.08), st.floats(0, 0.08), SURGE)
def test_quote_is_never_negative_and_never_falls_with_distance(policy, d1, d2, surge):
    pickup = Point(lat=37.44, lng=-122.14)
    near, far = sorted((d1, d2))

    def total(dlat):
        q = quote(pickup=pickup, dropoff=Point(lat=37.44 + dlat, lng=-122.14),
                  subtotal=Money(amount_minor=900, currency="USD"), tip=Money.zero("USD"),
                  tax_rate_bp=800, prep_time_s=600, now=0.0, policy=policy, surge=surge,
                  supply=SupplyDemand(open_orders=3, available_couriers=1))
        assert all(v >= 0 for v in q.prices.as_minor().values())
        return q.prices.total.amount_minor

    assert total(near) <= total(far)


@settings(max_examples=200)
@given(POLICIES, st.lists(st.floats(0, 50), min_size=2, max_size=30), st.floats(0, 12_000))
def test_fee_moves_at_most_the_step_cap_between_two_rounds(policy, raw_ratios, distance_m):
    """Between consecutive rounds the multiplier moves by <= surge_max_step, so the delivery
    fee moves by <= surge_max_step x (base + distance) (+1 minor unit of rounding)."""
    state = None
    step = Decimal(str(policy.surge_max_step))
    previous_fee = None
    for i, raw in enumerate(raw_ratios):
        before = multiplier_at(state, CELL)
        state = advance(state, {CELL: raw}, at=60.0 * i, policy=policy)
        after = multiplier_at(state, CELL)
        assert abs(after - before) <= step
        run = run_fee(fees.DRIVE, FeeInputs(distance_m=distance_m, currency="USD",
                                            surge=after), policy)
        fee = run.delivery_fee.amount_minor
        if previous_fee is not None:
            base_distance = run.sum_of(fees.BASE, fees.DISTANCE).amount_minor
            assert abs(fee - previous_fee) <= step * base_distance + 1
        previous_fee = fee


@given(POLICIES, st.lists(st.floats(0, 50), min_size=1, max_size=30))
def test_multiplier_stays_within_one_and_the_cap(policy, raw_ratios):
    state = None
    for i, raw in enumerate(raw_ratios):
        state = advance(state, {CELL: raw}, at=float(i), policy=policy)
        m = multiplier_at(state, CELL)
        assert Decimal(1) <= m <= max(Decimal(1), Decimal(str(policy.surge_cap)))
