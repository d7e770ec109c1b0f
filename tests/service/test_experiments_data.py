"""An experiment's observations from the database (app.experiments_data): exposures joined
with the orders they led to, per design; and the ``lastmile experiment`` commands."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from journeys import deliver_after
from lastmile.app import experiments, experiments_data, queries
from lastmile.app.experiments import NewExperiment
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.experiments.assignment import Variant, assign, switchback
from lastmile.core.geo import Point
from lastmile.core.pricing import PricingPolicy

DROP = Point(lat=37.445, lng=-122.15)
ARMS = (Variant(name="control"),
        Variant(name="treatment", params=(("base_delivery_fee_minor", 999),)))


def place(p, consumer: str, key: str):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    req = OrderRequest(consumer_id=consumer, merchant_id=m.id,
                       lines=(LineRequest(item_id=m.menu[0].id, quantity=2),), dropoff=DROP)
    return place_order(p.services, req, idempotency_key=key).order


def test_a_consumer_ab_gives_one_ratio_observation_per_exposed_consumer(sqlite_platform):
    p = sqlite_platform
    svc = p.services
    c0, c1, c2 = p.seed.consumer_ids[:3]
    before = place(p, c0, "pre")  # before the start: the consumer's CUPED covariate
    p.clock.advance(60)
    exp = experiments.create(svc, NewExperiment(name="fee", lever="fees", design="ab",
                                                variants=ARMS))
    experiments.start(svc, exp.id)
    first = place(p, c0, "a")
    second = place(p, c0, "b")
    third = place(p, c1, "c")
    p.clock.advance(120)  # the pre-period is as long as the experiment ran
    fees = experiments_data.observations(svc, exp.id, metric="delivery_fee_minor")
    assert [o.unit for o in fees] == sorted([c0, c1])  # c2 was never exposed
    by = {o.unit: o for o in fees}
    assert by[c0].denominator == 2.0
    assert by[c0].value == (first.prices.delivery_fee.amount_minor
                            + second.prices.delivery_fee.amount_minor)
    assert by[c0].covariate == before.prices.delivery_fee.amount_minor
    assert by[c1].covariate is None and by[c1].value == third.prices.delivery_fee.amount_minor
    for o in fees:
        assert o.variant == assign(exp.salt, o.unit, ARMS).name
    assert c2 not in by
    # Click-to-door: delivered orders only.
    assert experiments_data.observations(svc, exp.id) == ()
    done = deliver_after(p, first, p.seed.courier_ids[0], ride_s=900)
    (c2d,) = experiments_data.observations(svc, exp.id, metric="click_to_door_min")
    assert c2d.unit == c0 and c2d.denominator == 1.0
    assert c2d.value == pytest.approx((done.delivered_at - done.placed_at) / 60)


def test_a_switchback_observes_each_exposed_window_without_its_burn_in(sqlite_platform):
    p = sqlite_platform
    svc = p.services
    region = p.seed.region.id
    exp = experiments.create(svc, NewExperiment(
        name="fees-sb", lever="fees", design="switchback", variants=ARMS, window_s=600.0,
        burn_in_s=120.0, salt="sb"))
    exp = experiments.start(svc, exp.id)
    placed = []
    for i in range(8):  # every 150 s: four orders a window, one in each burn-in
        placed.append(place(p, p.seed.consumer_ids[i % 4], f"k{i}"))
        p.clock.advance(150.0)
    obs = experiments_data.observations(svc, exp.id, metric="delivery_fee_minor")
    expected: dict[str, list[int]] = {}
    for o in placed:
        slot = switchback(exp.salt, region, o.placed_at, exp.timing, ARMS)
        assert slot is not None
        if slot.counts:
            expected.setdefault(slot.unit, []).append(o.prices.delivery_fee.amount_minor)
    assert {o.unit: (o.value, o.denominator) for o in obs} == {
        u: (sum(v), float(len(v))) for u, v in expected.items()}
    assert all(o.cluster == o.unit for o in obs)


def test_a_market_ab_observes_each_market_before_and_after_the_start(sqlite_platform):
    p = sqlite_platform
    svc = p.services
    region = p.seed.region.id
    place(p, p.seed.consumer_ids[0], "pre")
    p.clock.advance(300)
    exp = experiments.create(svc, NewExperiment(
        name="fees-mkt", lever="fees", design="market_ab", variants=ARMS,
        strata_metrics={region: [1.0, 2.0], "reg_b": [3.0, 1.0], "reg_c": [2.0, 2.0]}))
    experiments.start(svc, exp.id)
    place(p, p.seed.consumer_ids[1], "post1")
    place(p, p.seed.consumer_ids[2], "post2")
    p.clock.advance(300)
    obs = experiments_data.observations(svc, exp.id, metric="delivery_fee_minor")
    slot = next(s for s in exp.allocation if s.market == region)
    assert [(o.unit, o.period, o.denominator) for o in obs] == [
        (region, "post", 2.0), (region, "pre", 1.0)]
    assert {(o.variant, o.stratum, o.cluster) for o in obs} == {
        (slot.variant, slot.stratum, region)}


def test_bad_requests_name_their_field_and_a_draft_has_nothing_to_analyse(sqlite_platform):
    svc = sqlite_platform.services
    exp = experiments.create(svc, NewExperiment(name="d", lever="fees", design="ab",
                                                variants=ARMS))
    with pytest.raises(Conflict) as draft:
        experiments_data.observations(svc, exp.id)
    assert draft.value.code == "experiment_not_started"
    with pytest.raises(InvalidInput) as metric:
        experiments_data.observations(svc, exp.id, metric="nope")
    assert metric.value.field == "metric"
    with pytest.raises(InvalidInput) as alpha:
        experiments_data.analyze(svc, exp.id, alpha=0.9)
    assert alpha.value.field == "alpha"


def test_analyze_hands_the_observations_to_the_statistics(sqlite_platform):
    p = sqlite_platform
    svc = p.services
    consumers = p.seed.consumer_ids
    # A salt that puts two of the four seeded consumers in each arm (a variance per arm).
    salt = next(s for s in (f"s{i}" for i in range(100))
                if sorted(assign(s, c, ARMS).name for c in consumers)
                == ["control", "control", "treatment", "treatment"])
    exp = experiments.create(svc, NewExperiment(name="fee2", lever="fees", design="ab",
                                                variants=ARMS, salt=salt))
    with pytest.raises(Conflict) as draft:
        experiments_data.analyze(svc, exp.id, metric="delivery_fee_minor")
    assert draft.value.code == "experiment_not_started"
    experiments.start(svc, exp.id)
    with pytest.raises(Conflict) as empty:
        experiments_data.analyze(svc, exp.id, metric="delivery_fee_minor")
    assert empty.value.code == "no_observations"
    for i, c in enumerate(consumers):
        place(p, c, f"k{i}")
    result = experiments_data.analyze(svc, exp.id, metric="delivery_fee_minor")
    assert result.design == "ab" and result.alpha == 0.05
    (effect,) = result.effects
    # Same merchant, same drop-off: the fee differs by the base fee alone.
    base = PricingPolicy().base_delivery_fee_minor
    assert effect.variant == "treatment" and effect.effect == 999 - base


def test_analyze_with_one_arm_observed_is_a_conflict_not_a_bad_request(sqlite_platform):
    p = sqlite_platform
    svc = p.services
    (consumer, *_) = p.seed.consumer_ids
    salt = next(s for s in (f"s{i}" for i in range(100))
                if assign(s, consumer, ARMS).name == "treatment")
    exp = experiments.create(svc, NewExperiment(name="fee3", lever="fees", design="ab",
                                                variants=ARMS, salt=salt))
    experiments.start(svc, exp.id)
    place(p, consumer, "one")
    with pytest.raises(Conflict) as one_arm:
        experiments_data.analyze(svc, exp.id, metric="delivery_fee_minor")
    assert one_arm.value.code == "not_enough_observations"


def test_the_experiment_commands_create_list_start_and_stop(sqlite_platform, tmp_path):
    from lastmile.cli import app

    run = CliRunner()
    db = ["--data-dir", str(tmp_path)]
    made = run.invoke(app, ["experiment", "create", "late", "--lever", "dispatch",
                            "--design", "switchback", "--window-s", "900", "--variant",
                            "control", "--variant", 'treatment:2={"late_weight": 0.5}', *db])
    assert made.exit_code == 0, made.stdout
    doc = json.loads(made.stdout)
    assert doc["unit"] == "region" and doc["variants"][1] == {
        "name": "treatment", "weight": 2.0, "params": {"late_weight": 0.5}}
    listed = run.invoke(app, ["experiment", "list", *db])
    assert listed.exit_code == 0 and "late" in listed.stdout
    assert run.invoke(app, ["experiment", "start", "late", *db]).exit_code == 0
    again = run.invoke(app, ["experiment", "start", "late", *db])
    assert again.exit_code == 2 and "invalid_transition" in again.stdout
    assert run.invoke(app, ["experiment", "stop", "late", *db]).exit_code == 0
    shown = json.loads(run.invoke(app, ["experiment", "show", "late", *db]).stdout)
    assert shown["state"] == "stopped"
    bad = run.invoke(app, ["experiment", "create", "bad", "--lever", "fees", "--variant",
                           "control", "--variant", 'x={"per_km_minor": -1}', *db])
    assert bad.exit_code == 2 and "variants[1].params.per_km_minor" in bad.stdout
