"""Live shifts to pay (app.pay): shifts from the history, orders inside them, the policy."""

import pytest

from fakes import an_order
from lastmile.app.events import Event
from lastmile.app.pay import ShiftSpan, region_policy, shift_spans, shift_work
from lastmile.bootstrap import pay_policy
from lastmile.core.errors import InvalidInput
from lastmile.core.orders import OrderStatus
from lastmile.core.pay import DEFAULT_POLICY, PayPolicy
from lastmile.settings import Settings


def an_event(kind: str, shift_id: str, at: float) -> Event:
    return Event(event_id=f"evt_{kind}_{shift_id}", type=f"courier.shift_{kind}", occurred_at=at,
                 region_id="reg_1", subject_id="cou_1", actor_kind="courier", actor_id="cou_1",
                 data={"shift_id": shift_id})


def test_shifts_pair_start_and_end_by_id_and_the_running_one_has_no_end():
    spans = shift_spans("cou_1", [an_event("started", "shf_1", 100.0),
                                  an_event("ended", "shf_1", 500.0),
                                  an_event("started", "shf_2", 900.0)])
    assert spans == [ShiftSpan(shift_id="shf_1", courier_id="cou_1", started_at=100.0,
                               ended_at=500.0),
                     ShiftSpan(shift_id="shf_2", courier_id="cou_1", started_at=900.0,
                               ended_at=None)]


def test_a_shift_pays_only_the_couriers_orders_delivered_inside_it():
    span = ShiftSpan(shift_id="shf_1", courier_id="cou_1", started_at=1_000.0,
                     ended_at=4_600.0)
    delivered = dict(status=OrderStatus.DELIVERED, courier_id="cou_1")
    orders = [
        an_order(id="ord_in", picked_up_at=2_000.0, delivered_at=2_600.0, **delivered),
        an_order(id="ord_before", delivered_at=900.0, **delivered),
        an_order(id="ord_after", delivered_at=4_700.0, **delivered),
        an_order(id="ord_other", delivered_at=2_000.0, status=OrderStatus.DELIVERED,
                 courier_id="cou_2"),
        an_order(id="ord_open", courier_id="cou_1", status=OrderStatus.PICKED_UP),
    ]
    work = shift_work(span, orders, now=10_000.0, time_zone="America/Los_Angeles")
    assert work.active_s == 3_600 and [o.order_id for o in work.orders] == ["ord_in"]
    (paid,) = work.orders
    assert paid.duration_s == 600 and paid.tip_minor == 300
    assert 1_900 < paid.distance_m < 2_100  # (37.44, -122.16) to (37.45, -122.14)


def test_the_running_shift_is_active_until_now():
    span = ShiftSpan(shift_id="s", courier_id="cou_1", started_at=1_000.0, ended_at=None)
    assert shift_work(span, [], now=2_800.0, time_zone="UTC").active_s == 1_800


def test_the_policy_takes_the_regions_currency():
    assert region_policy(DEFAULT_POLICY, "EUR").currency == "EUR"


def test_the_deployment_policy_comes_from_settings():
    assert pay_policy(Settings()) is DEFAULT_POLICY
    custom = pay_policy(Settings(pay_policy='{"base_per_order_minor": 500}'))
    assert custom.base_per_order_minor == 500
    assert custom.guarantee_per_hour_minor == DEFAULT_POLICY.guarantee_per_hour_minor
    assert Settings.from_env({"LASTMILE_PAY_POLICY": '{"x": 1}'}).pay_policy == '{"x": 1}'
    for bad, field in (("{nope", "LASTMILE_PAY_POLICY"), ("[1]", "LASTMILE_PAY_POLICY"),
                       ('{"rush_multiplier": "0.5"}', "pay.rush_multiplier")):
        with pytest.raises(InvalidInput) as err:
            pay_policy(Settings(pay_policy=bad))
        assert err.value.field == field
    assert isinstance(custom, PayPolicy)
