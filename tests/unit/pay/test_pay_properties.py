"""Invariants of the pay pipeline, over random policies and shifts (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from lastmile.core.pay import (
    BoostWindow,
    DeliveredOrder,
    PayPolicy,
    ShiftWork,
    TimeWindow,
    guarantee_for,
    minute_of,
    order_lines,
    statement,
)

DAY_S = 86_400


@st.composite
def windows(draw):
    start = draw(st.integers(0, 1_439))
    return TimeWindow(start_min=start, end_min=draw(st.integers(start + 1, 1_440)))


@st.composite
def boost_windows(draw):
    w = draw(windows())
    return BoostWindow(start_min=w.start_min, end_min=w.end_min,
                       amount_minor=draw(st.integers(0, 1_000)))


policies = st.builds(
    PayPolicy,
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
    base_per_order_minor=st.integers(0, 2_000),
    per_km_minor=st.integers(0, 300),
    per_minute_minor=st.integers(0, 100),
    rush_multiplier=st.sampled_from(["1", "1.25", "1.5", "2", "1.333"]),
    rush_windows=st.lists(windows(), max_size=3).map(tuple),
    boosts=st.lists(boost_windows(), max_size=2).map(tuple),
    guarantee_per_hour_minor=st.integers(0, 5_000),
    utc_offset_min=st.integers(-720, 720),
)

orders = st.builds(
    DeliveredOrder,
    order_id=st.uuids().map(str),
    delivered_at=st.integers(0, 3 * DAY_S).map(float),
    distance_m=st.integers(0, 30_000),
    duration_s=st.integers(0, 7_200),
    tip_minor=st.integers(0, 5_000),
    local_minute=st.none() | st.integers(0, 1_439),
)

shifts = st.builds(ShiftWork, shift_id=st.just("shf"), courier_id=st.just("cou"),
                   active_s=st.integers(0, 14 * 3_600),
                   orders=st.lists(orders, max_size=8).map(tuple))


@settings(max_examples=300, deadline=None)
@given(policies, shifts)
def test_pay_without_tips_is_never_below_the_guarantee_for_the_active_hours(policy, shift):
    s = statement(policy, shift)
    assert s.total - s.tips >= guarantee_for(policy, shift.active_s)
    assert s.top_up.amount_minor == max(0, s.guarantee.amount_minor - s.earnings.amount_minor)
    assert s.total.amount_minor == sum(ln.amount.amount_minor for ln in s.lines)


@settings(max_examples=300, deadline=None)
@given(policies, shifts)
def test_tips_pass_through_in_full(policy, shift):
    s = statement(policy, shift)
    assert s.tips.amount_minor == sum(o.tip_minor for o in shift.orders)
    for o in shift.orders:
        tip_lines = [ln for ln in s.lines if ln.order_id == o.order_id and ln.component == "tip"]
        assert sum(ln.amount.amount_minor for ln in tip_lines) == o.tip_minor


@settings(max_examples=300, deadline=None)
@given(policies, orders)
def test_the_rush_multiplier_applies_only_inside_a_window(policy, order):
    lines = order_lines(policy, order)
    minute = minute_of(policy, order)
    inside = any(w.contains(minute) for w in policy.rush_windows)
    rush = [ln for ln in lines if ln.component == "rush"]
    if not inside:
        assert rush == []
    else:
        earned = sum(ln.amount.amount_minor for ln in lines
                     if ln.component in ("base", "distance", "time"))
        expected = round(earned * (policy.multiplier - 1))
        assert sum(ln.amount.amount_minor for ln in rush) == expected


@settings(max_examples=200, deadline=None)
@given(policies, orders)
def test_every_line_is_explained_and_not_negative(policy, order):
    for ln in order_lines(policy, order):
        assert ln.order_id == order.order_id and ln.reason and ln.amount.amount_minor > 0
        assert ln.amount.currency == policy.currency


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2_000, 2_000) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=3),
    max_leaves=8)
keys = st.sampled_from(["currency", "base_per_order_minor", "per_km_minor", "rush_multiplier",
                        "rush_windows", "boosts", "guarantee_per_hour_minor", "utc_offset_min",
                        "tips"])
boost_like = st.fixed_dictionaries({"start_min": json_values, "end_min": json_values,
                                    "amount_minor": json_values},
                                   optional={"reason": json_values})


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, json_values | st.lists(boost_like, max_size=2), max_size=4))
def test_any_json_is_a_policy_or_an_invalid_input_naming_a_pay_field(raw):
    from lastmile.core.errors import InvalidInput
    from lastmile.core.pay import policy_from_mapping

    try:
        policy_from_mapping(raw)
    except InvalidInput as err:
        assert err.field is not None and err.field.startswith("pay.")
        assert err.message.startswith(err.field.removeprefix("pay."))
