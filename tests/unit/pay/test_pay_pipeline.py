"""The courier pay pipeline (core.pay): literal inputs, amounts computed by hand."""

from decimal import Decimal

import pytest

from lastmile.core.errors import InvalidInput
from lastmile.core.money import Money
from lastmile.core.pay import (
    BoostWindow,
    DeliveredOrder,
    PayPolicy,
    ShiftWork,
    TimeWindow,
    order_lines,
    policy_from_mapping,
    statement,
)

NOON = 12 * 3600.0  # epoch seconds of 12:00 UTC on day 0
POLICY = PayPolicy(
    base_per_order_minor=300,
    per_km_minor=50,
    per_minute_minor=10,
    rush_multiplier="1.5",
    rush_windows=(TimeWindow(start_min=11 * 60 + 30, end_min=13 * 60 + 30),),
    boosts=(BoostWindow(start_min=18 * 60, end_min=21 * 60, amount_minor=200, reason="dinner"),),
    guarantee_per_hour_minor=2_000,
)


def usd(minor: int) -> Money:
    return Money(amount_minor=minor, currency="USD")


def an_order(**overrides: object) -> DeliveredOrder:
    values: dict[str, object] = {"order_id": "ord_1", "delivered_at": 9 * 3600.0,
                                 "distance_m": 4_000, "duration_s": 1_200, "tip_minor": 0}
    values.update(overrides)
    return DeliveredOrder(**values)  # type: ignore[arg-type]


def components(lines):
    return [(ln.component, ln.amount.amount_minor) for ln in lines]


def test_an_order_outside_windows_earns_base_distance_and_time():
    # 3.00 + 4 km x 0.50 + 20 min x 0.10
    assert components(order_lines(POLICY, an_order())) == [
        ("base", 300), ("distance", 200), ("time", 200)]


def test_rush_hour_multiplies_base_distance_and_time_as_the_last_step():
    lines = order_lines(POLICY, an_order(delivered_at=NOON, tip_minor=500))
    # (300 + 200 + 200) x 0.5 = 350 extra; the tip is not multiplied
    assert components(lines) == [
        ("base", 300), ("distance", 200), ("time", 200), ("rush", 350), ("tip", 500)]
    assert lines[3].reason == "rush hour 11:30-13:30: x1.5"


def test_the_rush_window_end_is_exclusive():
    at_end = an_order(delivered_at=13 * 3600.0 + 30 * 60)
    assert "rush" not in [ln.component for ln in order_lines(POLICY, at_end)]


def test_a_boost_is_flat_and_not_multiplied():
    lines = order_lines(POLICY, an_order(delivered_at=19 * 3600.0))
    assert ("boost", 200) in components(lines)
    assert "dinner (18:00-21:00)" in [ln.reason for ln in lines]


def test_windows_are_read_in_the_local_day_of_the_policy():
    local = PayPolicy(base_per_order_minor=100, rush_multiplier="2", utc_offset_min=120,
                      rush_windows=(TimeWindow(start_min=14 * 60, end_min=15 * 60),))
    # 12:10 UTC is 14:10 at UTC+2
    assert ("rush", 100) in components(order_lines(local, an_order(delivered_at=NOON + 600)))


def test_a_local_minute_given_by_the_caller_wins_over_the_offset():
    # the region's zone says 12:00 local although the epoch second is 09:00 UTC
    lines = order_lines(POLICY, an_order(local_minute=12 * 60))
    assert "rush" in [ln.component for ln in lines]


def test_tips_pass_through_in_full_and_do_not_count_towards_the_guarantee():
    shift = ShiftWork(shift_id="shf_1", courier_id="cou_1", active_s=3_600,
                      orders=(an_order(tip_minor=1_000),))
    s = statement(POLICY, shift)
    # earned 7.00 without the tip, guarantee 20.00: top-up 13.00, then the 10.00 tip
    assert s.earnings == usd(700) and s.tips == usd(1_000) and s.guarantee == usd(2_000)
    assert s.top_up == usd(1_300) and s.total == usd(3_000)
    assert s.lines[-1].component == "guarantee_top_up" and s.lines[-1].order_id is None
    assert "20.00 USD/h x 1.00 active h" in s.lines[-1].reason


def test_no_top_up_when_earnings_beat_the_guarantee():
    orders = tuple(an_order(order_id=f"ord_{i}", delivered_at=9 * 3600.0 + i) for i in range(4))
    s = statement(POLICY, ShiftWork(shift_id="s", courier_id="c", active_s=3_600, orders=orders))
    assert s.earnings == usd(2_800) and s.top_up == usd(0) and s.total == usd(2_800)
    assert not s.guaranteed and all(ln.component != "guarantee_top_up" for ln in s.lines)


def test_a_shift_without_orders_is_paid_the_guarantee_for_its_active_time():
    s = statement(POLICY, ShiftWork(shift_id="s", courier_id="c", active_s=5_400))
    assert s.total == usd(3_000) and s.orders == 0 and s.guaranteed


def test_lines_follow_the_drop_off_order_and_the_total_is_their_sum():
    late, early = an_order(order_id="ord_b", delivered_at=40_000.0), an_order(order_id="ord_a")
    s = statement(POLICY, ShiftWork(shift_id="s", courier_id="c", active_s=0,
                                    orders=(late, early)))
    assert [ln.order_id for ln in s.lines][0] == "ord_a"
    assert s.total.amount_minor == sum(ln.amount.amount_minor for ln in s.lines)


def test_prorating_rounds_once_half_to_even():
    # 1 minute at 0.30/h = 0.5 cent -> 0 (even); 3 minutes = 1.5 cents -> 2
    p = PayPolicy(guarantee_per_hour_minor=30)
    assert statement(p, ShiftWork(shift_id="s", courier_id="c", active_s=60)).total == usd(0)
    assert statement(p, ShiftWork(shift_id="s", courier_id="c", active_s=180)).total == usd(2)


def test_a_zero_decimal_currency_pays_whole_yen():
    p = PayPolicy(currency="JPY", base_per_order_minor=500, per_km_minor=75)
    lines = order_lines(p, an_order(distance_m=1_500))
    assert components(lines) == [("base", 500), ("distance", 112)]  # 112.5 -> 112 (even)
    assert lines[1].amount.currency == "JPY"


@pytest.mark.parametrize(("changes", "field"), [
    ({"base_per_order_minor": -1}, "pay.base_per_order_minor"),
    ({"per_km_minor": 1.5}, "pay.per_km_minor"),
    ({"rush_multiplier": "0.9"}, "pay.rush_multiplier"),
    ({"rush_multiplier": "fast"}, "pay.rush_multiplier"),
    ({"currency": "usd"}, "pay.currency"),
    ({"utc_offset_min": 10_000}, "pay.utc_offset_min"),
    ({"rush_windows": [[600, 500]]}, "pay.rush_windows"),
    ({"rush_windows": [[0, 1_500]]}, "pay.rush_windows.end_min"),
    ({"boosts": [{"start_min": 0, "end_min": 60}]}, "pay.boosts"),
    ({"boosts": [{"start_min": 0, "end_min": 60, "amount_minor": -5}]},
     "pay.boosts.amount_minor"),
    ({"tips_share": 1}, "pay.tips_share"),
])
def test_a_bad_policy_is_refused_naming_the_field(changes, field):
    with pytest.raises(InvalidInput) as err:
        policy_from_mapping(changes)
    assert err.value.field == field and err.value.code == "invalid_pay_policy"


def test_a_policy_from_settings_data():
    p = policy_from_mapping({"base_per_order_minor": 250, "rush_multiplier": "1.25",
                             "rush_windows": [[690, 810]],
                             "boosts": [{"start_min": 0, "end_min": 60, "amount_minor": 100}]})
    assert p.rush_windows == (TimeWindow(start_min=690, end_min=810),)
    assert p.boosts[0].reason == "boost"
    assert policy_from_mapping({"rush_multiplier": 1.5}).multiplier == Decimal("1.5")


def test_a_negative_tip_or_active_time_is_refused():
    with pytest.raises(InvalidInput, match="tip_minor must be"):
        an_order(tip_minor=-1)
    with pytest.raises(InvalidInput, match="active_s must be"):
        ShiftWork(shift_id="s", courier_id="c", active_s=-60)
