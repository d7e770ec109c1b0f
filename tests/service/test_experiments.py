"""Experiments served to the levers (app.experiments): definitions in the database, states,
``variant`` recording each unit's exposure once, layers keeping experiments apart, and the
fees, ETA and dispatch levers changing for the treated units only."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fakes import in_memory
from lastmile.adapters.eta_models import FileModelRegistry, write_heuristic
from lastmile.app import experiments, queries
from lastmile.app.dispatching import round_policy
from lastmile.app.experiments import NewExperiment
from lastmile.app.ordering import LineRequest, OrderRequest, get_quote, place_order
from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.errors import Conflict, InvalidInput, NotFound
from lastmile.core.eta.engine import HeuristicParams
from lastmile.core.experiments.assignment import Variant, assign, switchback
from lastmile.core.experiments.definition import Context, State
from lastmile.core.geo import Point

DROP = Point(lat=37.445, lng=-122.15)


def arms(**treatment: object) -> tuple[Variant, ...]:
    return (Variant(name="control"),
            Variant(name="treatment", params=tuple(sorted(treatment.items()))))


def a_salt_splitting(units, variants) -> str:
    """A salt that puts these units in both arms (so a test sees both)."""
    for i in range(1_000):
        if len({assign(f"salt{i}", u, variants).name for u in units}) == 2:
            return f"salt{i}"
    raise AssertionError("no salt splits the units")


def request(p, consumer: str) -> OrderRequest:
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    return OrderRequest(consumer_id=consumer, merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=2),), dropoff=DROP)


def exposures(p, experiment_id: str):
    with p.services.uow(read_only=True) as uow:
        return uow.experiments.exposures(experiment_id, limit=1_000)


def test_an_experiment_goes_from_draft_to_running_to_stopped_and_no_other_way(platform):
    svc = platform.services
    made = experiments.create(svc, NewExperiment(name="fee-test", lever="fees", design="ab",
                                                 variants=arms(base_delivery_fee_minor=999)))
    assert made.state is State.DRAFT and made.unit_kind == "consumer"
    assert experiments.get(svc, "fee-test") == made == experiments.get(svc, made.id)
    started = experiments.start(svc, "fee-test")
    assert started.state is State.RUNNING and started.started_at == platform.clock.now()
    with pytest.raises(Conflict) as again:
        experiments.start(svc, made.id)
    assert again.value.code == "invalid_transition"
    stopped = experiments.stop(svc, made.id)
    assert stopped.state is State.STOPPED and stopped.stopped_at is not None
    assert [e.state for e in experiments.list_experiments(svc)] == [State.STOPPED]
    with pytest.raises(NotFound):
        experiments.get(svc, "nope")


def test_a_taken_name_is_409_and_a_bad_definition_names_its_field(platform):
    svc = platform.services
    spec = NewExperiment(name="fees-a", lever="fees", design="ab",
                         variants=arms(base_delivery_fee_minor=10))
    experiments.create(svc, spec)
    with pytest.raises(Conflict) as taken:
        experiments.create(svc, spec)
    assert taken.value.field == "name"
    for bad, field in [
        (replace(spec, name="x2", variants=arms(per_km_minor=-1)),
         "variants[1].params.per_km_minor"),
        (replace(spec, name="x3", variants=(Variant(name="a"), Variant(name="b"))), "variants"),
        (replace(spec, name="x4", design="switchback", unit="consumer"), "unit"),
        (replace(spec, name="x5", lever="dispatch"), "unit"),
        (replace(spec, name="Bad Name"), "name"),
        (replace(spec, name="x6", share=1.5), "share"),
        (replace(spec, name="x7", design="switchback", window_s=0.0), "window_s"),
    ]:
        with pytest.raises(InvalidInput) as err:
            experiments.create(svc, bad)
        assert err.value.field == field, bad


def test_a_fees_experiment_changes_the_fee_of_treated_consumers_only(platform):
    svc, consumers = platform.services, platform.seed.consumer_ids
    variants = arms(base_delivery_fee_minor=1_999)
    salt = a_salt_splitting(consumers, variants)
    before = {c: get_quote(svc, request(platform, c)).prices.delivery_fee for c in consumers}
    exp = experiments.create(svc, NewExperiment(name="fee-up", lever="fees", design="ab",
                                                variants=variants, salt=salt))
    drafted = {c: get_quote(svc, request(platform, c)).prices.delivery_fee for c in consumers}
    assert drafted == before  # a draft serves nothing
    experiments.start(svc, exp.id)
    for _ in range(2):
        after = {c: get_quote(svc, request(platform, c)).prices.delivery_fee for c in consumers}
    for c in consumers:
        treated = assign(salt, c, variants).name == "treatment"
        assert (after[c] != before[c]) == treated, c
        if treated:
            assert after[c].amount_minor > before[c].amount_minor
    seen = exposures(platform, exp.id)
    assert sorted(x.unit for x in seen) == sorted(consumers)  # two quotes each, one row
    assert {x.unit: x.variant for x in seen} == {c: assign(salt, c, variants).name
                                                 for c in consumers}


def test_a_placed_order_records_its_exposure_in_the_order_transaction(platform):
    svc = platform.services
    consumer = platform.seed.consumer_ids[0]
    exp = experiments.create(svc, NewExperiment(name="fee-order", lever="fees", design="ab",
                                                variants=arms(base_delivery_fee_minor=5)))
    experiments.start(svc, exp.id)
    order = place_order(svc, request(platform, consumer), idempotency_key="k1").order
    (seen,) = exposures(platform, exp.id)
    assert seen.unit == consumer and seen.first_at == order.placed_at
    assert seen.variant == assign(exp.salt, consumer, exp.variants).name


def _models(tmp_path: Path) -> FileModelRegistry:
    write_heuristic(tmp_path / "wide.json", HeuristicParams(
        name="heuristic-wide", pickup_leg_s=1_200, p10_ratio=0.5, p90_ratio=2.0))
    write_heuristic(tmp_path / "base.json", HeuristicParams(name="heuristic-base"))
    (tmp_path / "registry.json").write_text(json.dumps(
        {"incumbent": "base.json", "shadow": "wide.json"}))
    return FileModelRegistry(tmp_path)


@in_memory
def test_an_eta_experiment_serves_the_shadow_model_to_treated_consumers_only(platform,
                                                                             tmp_path):
    svc = replace(platform.services, eta_models=_models(tmp_path))
    consumers = platform.seed.consumer_ids
    variants = arms(model="shadow")
    salt = a_salt_splitting(consumers, variants)
    exp = experiments.create(svc, NewExperiment(name="eta-shadow", lever="eta", design="ab",
                                                variants=variants, salt=salt))
    experiments.start(svc, exp.id)
    for c in consumers:
        q = get_quote(svc, request(platform, c))
        assert q.estimate is not None
        treated = assign(salt, c, variants).name == "treatment"
        assert q.estimate.model == ("heuristic-wide" if treated else "heuristic-base"), c


def test_a_dispatch_switchback_changes_the_round_policy_in_treated_windows_only(platform):
    svc = platform.services
    region = platform.seed.region.id
    base = DispatchPolicy()
    variants = arms(late_weight=0.1)
    exp = experiments.create(svc, NewExperiment(
        name="late-sb", lever="dispatch", design="switchback", variants=variants,
        window_s=600.0, burn_in_s=60.0))
    assert round_policy(svc, region, base) == base
    exp = experiments.start(svc, exp.id)
    seen_arms = set()
    for _ in range(12):
        slot = switchback(exp.salt, region, platform.clock.now(), exp.timing, variants)
        assert slot is not None
        policy = round_policy(svc, region, base)
        expected = 0.1 if slot.variant.name == "treatment" else base.late_weight
        assert policy.late_weight == expected
        assert replace(policy, late_weight=base.late_weight) == base
        seen_arms.add(slot.variant.name)
        platform.clock.advance(600.0)
    assert seen_arms == {"control", "treatment"}
    units = {x.unit for x in exposures(platform, exp.id)}
    assert units == {f"{region}@{w}" for w in range(12)}


def test_two_experiments_of_one_layer_never_serve_one_unit_and_the_holdout_gets_none(
        platform):
    svc = platform.services
    one = experiments.create(svc, NewExperiment(
        name="one", lever="other", design="ab", variants=arms(), layer="ranking",
        holdout=0.2, share=0.4))
    two = experiments.create(svc, NewExperiment(
        name="two", lever="other", design="ab", variants=arms(), layer="ranking", share=0.4))
    assert one.span.low == pytest.approx(0.2) and two.span.low == pytest.approx(0.6)
    with pytest.raises(InvalidInput) as full:
        experiments.create(svc, NewExperiment(name="three", lever="other", design="ab",
                                              variants=arms(), layer="ranking", share=0.3))
    assert full.value.field == "share"
    with pytest.raises(Conflict) as holdout:
        experiments.create(svc, NewExperiment(name="four", lever="other", design="ab",
                                              variants=arms(), layer="ranking", holdout=0.5,
                                              share=0.1))
    assert holdout.value.field == "holdout"
    for e in (one, two):
        experiments.start(svc, e.id)
    now = platform.clock.now()
    counts = {"one": 0, "two": 0, "none": 0}
    for i in range(600):
        ctx = Context(at_s=now, consumer_id=f"con_{i}")
        got = [name for name in ("one", "two")
               if experiments.variant(svc, name, f"con_{i}", ctx) is not None]
        assert len(got) <= 1
        counts[got[0] if got else "none"] += 1
    assert all(counts[k] > 150 for k in ("one", "two"))  # 40 % each, 240 expected
    assert counts["none"] > 60  # the holdout's 20 %, 120 expected


def test_a_market_ab_test_serves_its_stratified_allocation(platform):
    svc = platform.services
    region = platform.seed.region.id
    metrics = {region: [120.0, 31.0], **{f"reg_x{i}": [float(i), float(i % 3)]
                                         for i in range(17)}}
    exp = experiments.create(svc, NewExperiment(
        name="fees-market", lever="fees", design="market_ab",
        variants=arms(base_delivery_fee_minor=10), strata_metrics=metrics))
    assert {s.market for s in exp.allocation} == set(metrics)
    for stratum in {s.stratum for s in exp.allocation}:
        in_it = [s.variant for s in exp.allocation if s.stratum == stratum]
        assert abs(in_it.count("control") - in_it.count("treatment")) <= 1
    experiments.start(svc, exp.id)
    mine = next(s for s in exp.allocation if s.market == region)
    got = experiments.variant(svc, "fees-market", region,
                              Context(at_s=platform.clock.now(), region_id=region))
    assert got is not None and got.variant.name == mine.variant
    assert experiments.variant(svc, "fees-market", "reg_elsewhere",
                               Context(at_s=platform.clock.now())) is None


def test_another_tenants_experiments_are_invisible_and_never_served(platform):
    from lastmile.app.tenancy import acting_as
    from lastmile.app.tenants import create_tenant

    svc = platform.services
    create_tenant(svc, "acme:eats")
    with acting_as("acme:eats"):
        theirs = experiments.create(svc, NewExperiment(
            name="fee-up", lever="fees", design="ab",
            variants=arms(base_delivery_fee_minor=1)))
        experiments.start(svc, theirs.id)
        assert experiments.variant(svc, "fee-up", "con_1",
                                   Context(at_s=platform.clock.now())) is not None
    assert experiments.list_experiments(svc) == []
    with pytest.raises(NotFound):
        experiments.get(svc, theirs.id)
    assert experiments.variant(svc, "fee-up", "con_1", Context(at_s=platform.clock.now())) is None
    mine = experiments.create(svc, NewExperiment(name="fee-up", lever="fees", design="ab",
                                                 variants=arms(base_delivery_fee_minor=2)))
    assert mine.id != theirs.id  # names are unique per tenant


def test_a_market_ab_without_metrics_stratifies_the_tenants_regions_on_their_orders(
        platform):
    svc = platform.services
    region = platform.seed.region.id
    place_order(svc, request(platform, platform.seed.consumer_ids[0]), idempotency_key="k")
    with svc.uow(read_only=True) as uow:
        metrics = experiments.market_metrics(uow, platform.clock.now())
    assert metrics == {region: [1.0, 0.0]}  # one order, none delivered yet
    exp = experiments.create(svc, NewExperiment(
        name="mkt", lever="dispatch", design="market_ab", variants=arms(late_weight=0.2)))
    assert [(s.market, s.stratum) for s in exp.allocation] == [(region, "0.0")]


def test_params_that_break_the_tenants_own_policy_are_refused_at_creation(platform):
    from lastmile.app.tenants import configure
    from lastmile.core.tenancy import DEFAULT_TENANT

    svc = platform.services
    configure(svc, {"fees": {"service_fee_max_minor": 100}}, tenant_id=DEFAULT_TENANT)
    with pytest.raises(InvalidInput) as err:
        experiments.create(svc, NewExperiment(name="svc-fee", lever="fees", design="ab",
                                              variants=arms(service_fee_min_minor=200)))
    assert err.value.field == "variants[1].params"
    assert "service_fee_min_minor" in err.value.message


def test_every_exposure_is_an_experiment_exposed_event_in_history_and_outbox(platform):
    svc, consumers = platform.services, platform.seed.consumer_ids
    exp = experiments.create(svc, NewExperiment(name="fee-events", lever="fees", design="ab",
                                                variants=arms(base_delivery_fee_minor=299)))
    experiments.start(svc, exp.id)
    for _ in range(2):  # two quotes each: one exposure, one event
        for c in consumers:
            get_quote(svc, request(platform, c))
    order = place_order(svc, request(platform, consumers[0]), idempotency_key="k-ev").order
    seen = {x.unit: x for x in exposures(platform, exp.id)}
    with svc.uow(read_only=True) as uow:
        history = {c: [e for e in uow.events.for_subject(c)
                       if e.type == experiments.EXPOSED_EVENT] for c in consumers}
        outbox = [e.event for e in uow.outbox.pending(10_000)
                  if e.event.type == experiments.EXPOSED_EVENT]
    for c in consumers:
        (event,) = history[c]
        assert event.data["experiment_id"] == exp.id
        assert event.data["variant"] == seen[c].variant
        assert event.data["first_at"] == seen[c].first_at
    assert sorted(e.subject_id for e in outbox) == sorted(consumers)
    assert order.consumer_id in seen  # the placement found its exposure: no second event


def test_an_exposure_rolled_back_with_its_transaction_leaves_no_event(platform):
    svc, consumer = platform.services, platform.seed.consumer_ids[0]
    exp = experiments.create(svc, NewExperiment(name="fee-rollback", lever="fees", design="ab",
                                                variants=arms(base_delivery_fee_minor=299)))
    experiments.start(svc, exp.id)
    at = svc.clock.now()
    with svc.uow() as uow:  # no commit: the caller's work failed
        assert experiments.variant(svc, exp.name, consumer, Context(at_s=at, consumer_id=consumer),
                                   uow=uow) is not None
    assert exposures(platform, exp.id) == []
    with svc.uow(read_only=True) as uow:
        assert [e for e in uow.events.for_subject(consumer)
                if e.type == experiments.EXPOSED_EVENT] == []
    experiments.variant(svc, exp.name, consumer, Context(at_s=at, consumer_id=consumer))
    with svc.uow(read_only=True) as uow:
        assert len([e for e in uow.events.for_subject(consumer)
                    if e.type == experiments.EXPOSED_EVENT]) == 1
