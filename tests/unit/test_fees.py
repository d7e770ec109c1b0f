"""The delivery fee pipeline (core.fees) and per-cell surge (core.surge), on literal inputs."""

from decimal import Decimal

import pytest

from lastmile.core import fees
from lastmile.core.errors import InvalidInput
from lastmile.core.fees import FeeInputs, FeeLine, run_fee, signed
from lastmile.core.geo import Point
from lastmile.core.money import Money
from lastmile.core.pricing import PricingPolicy
from lastmile.core.surge import (
    SurgeState,
    advance,
    cell_of,
    counts_by_cell,
    multiplier_at,
    neighbourhood_ratios,
    ring_of,
    saturation_ratio,
    target_multiplier,
)

POLICY = PricingPolicy()
HERE = Point(lat=37.44, lng=-122.14)


def _usd(minor):
    return Money(amount_minor=minor, currency="USD")


def test_each_step_adds_one_line_in_pipeline_order():
    run = run_fee(fees.MARKETPLACE, FeeInputs(distance_m=5_000, currency="USD",
                                              surge=Decimal("1.50"), subtotal=_usd(800)), POLICY)
    assert [(line.kind, line.amount.amount_minor) for line in run.lines] == [
        ("base", 199), ("distance", 180), ("small_order", 200), ("surge", 190), ("cap", 0)]
    assert run.delivery_fee == _usd(199 + 180 + 190)
    assert run.small_order_fee == _usd(200)


def test_surge_never_applies_to_the_small_order_fee():
    calm = run_fee(fees.MARKETPLACE, FeeInputs(distance_m=0, currency="USD",
                                               subtotal=_usd(500)), POLICY)
    busy = run_fee(fees.MARKETPLACE, FeeInputs(distance_m=0, currency="USD", surge=Decimal(2),
                                               subtotal=_usd(500)), POLICY)
    assert busy.small_order_fee == calm.small_order_fee == _usd(200)
    assert busy.delivery_fee == _usd(2 * 199)


def test_drive_rule_set_has_no_small_order_fee():
    run = run_fee(fees.DRIVE, FeeInputs(distance_m=1_000, currency="USD"), POLICY)
    assert [line.kind for line in run.lines] == ["base", "distance", "surge", "cap"]
    assert run.small_order_fee == _usd(0)


def test_the_cap_takes_off_the_excess_as_a_negative_line():
    policy = PricingPolicy(max_delivery_fee_minor=500)
    run = run_fee(fees.DRIVE, FeeInputs(distance_m=10_000, currency="USD",
                                        surge=Decimal("2.5")), policy)
    assert run.delivery_fee == _usd(500)
    assert run.lines[-1].kind == "cap" and run.lines[-1].amount.amount_minor < 0


def test_reasons_are_signed_amounts_in_the_currency_decimals():
    assert FeeLine(kind="surge", amount=_usd(150)).reason == "busy nearby: +1.50"
    assert FeeLine(kind="small_order", amount=_usd(200)).reason == "small order: +2.00"
    assert signed(Money(amount_minor=150, currency="JPY")) == "+150"
    assert signed(Money(amount_minor=1_500, currency="KWD")) == "+1.500"
    assert signed(_usd(-25)) == "-0.25"


def test_zero_lines_give_no_reason():
    run = run_fee(fees.MARKETPLACE, FeeInputs(distance_m=0, currency="USD",
                                              subtotal=_usd(5_000)), POLICY)
    assert run.reasons == ("delivery: +1.99",)


def test_ratio_sums_demand_and_supply_over_the_ring():
    cell = cell_of(HERE, 8)
    ring = ring_of(cell, 1)
    assert len(ring) == 7 and cell in ring
    neighbour = next(c for c in ring if c != cell)
    ratios = neighbourhood_ratios({cell: 6}, {neighbour: 2}, k=1)
    assert ratios[cell] == 3.0
    assert ratios[neighbour] == 3.0  # the neighbour's ring holds the cell too
    assert set(ratios) == set(ring)  # only cells within reach of some demand


def test_orders_with_no_courier_in_reach_are_maximal_pressure():
    cell = cell_of(HERE, 8)
    saturated = saturation_ratio(POLICY)
    assert saturated == 4.5 and target_multiplier(saturated, POLICY) == Decimal("2.50")
    assert neighbourhood_ratios({cell: 2}, {}, k=0, no_courier_ratio=saturated) == {cell: 4.5}
    assert neighbourhood_ratios({cell: 9}, {}, k=0, no_courier_ratio=saturated) == {cell: 9.0}
    assert neighbourhood_ratios({cell: 2}, {cell: 1}, k=0, no_courier_ratio=saturated) == {
        cell: 2.0}


def test_counts_by_cell_groups_points():
    near = Point(lat=37.44001, lng=-122.14001)
    far = Point(lat=37.50, lng=-122.20)
    counts = counts_by_cell([HERE, near, far], 8)
    assert counts[cell_of(HERE, 8)] == 2 and sum(counts.values()) == 3


def test_target_multiplier_floors_to_quarter_steps_and_caps():
    assert target_multiplier(1.0, POLICY) == Decimal("1.00")
    assert target_multiplier(3.0, POLICY) == Decimal("1.75")
    assert target_multiplier(3.4, POLICY) == Decimal("1.75")
    assert target_multiplier(100.0, POLICY) == Decimal("2.50")


def test_a_rush_raises_the_multiplier_one_step_per_round_then_it_decays():
    cell = cell_of(HERE, 8)
    state = None
    seen = []
    for i in range(6):
        state = advance(state, {cell: 20.0}, at=60.0 * i, policy=POLICY)
        seen.append(multiplier_at(state, cell))
    assert seen == [Decimal(x) for x in ("1.25", "1.50", "1.75", "2.00", "2.25", "2.50")]
    for i in range(40):
        state = advance(state, {}, at=60.0 * (6 + i), policy=POLICY)
    assert multiplier_at(state, cell) == Decimal("1.00")
    assert state.cells == ()  # a cell back at rest is forgotten


def test_unknown_cell_pays_no_surge():
    assert multiplier_at(None, "8828308281fffff") == Decimal("1.00")
    assert multiplier_at(SurgeState(at=0.0), "8828308281fffff") == Decimal("1.00")


@pytest.mark.parametrize("field,value", [("surge_smoothing", 0.0), ("surge_smoothing", 1.5),
                                         ("surge_max_step", 0.0), ("surge_h3_resolution", 16),
                                         ("max_delivery_fee_minor", -1), ("quote_ttl_s", 0)])
def test_policy_refuses_bad_surge_knobs(field, value):
    with pytest.raises(InvalidInput):
        PricingPolicy(**{field: value})
