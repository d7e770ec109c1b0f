"""The acceptance model (learnt from offer outcomes) and its price in a round's costs."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.dispatch.conftest import TRAVEL, _courier, _order, _snapshot

from lastmile.core.dispatch import DispatchPolicy, plan_round, round_costs
from lastmile.core.dispatch.acceptance import (
    DEFAULT_PRIOR_P,
    AcceptanceModel,
    AcceptancePricing,
    OfferFeatures,
    OfferOutcome,
    acceptance_matrix,
    design_row,
    fit_acceptance,
    offer_features,
    price_acceptance,
)
from lastmile.core.dispatch.costing import INFEASIBLE
from lastmile.core.errors import InvalidInput

NOON = 1_767_225_600.0 + 12 * 3600


def a_feature(rng: random.Random) -> OfferFeatures:
    return offer_features(pickup_m=rng.uniform(0, 5000), trip_m=rng.uniform(300, 6000),
                          n_orders=rng.choice((1, 1, 1, 2)), at_s=NOON + rng.uniform(-4, 8) * 3600)


def true_logit(f: OfferFeatures) -> float:
    return 2.5 - 0.9 * f.pickup_m / 1000 + 0.8 * f.pay_per_min


def history(n: int, seed: int, offsets: dict[str, float]) -> list[OfferOutcome]:
    rng = random.Random(seed)
    ids = sorted(offsets)
    out = []
    for _ in range(n):
        cid = rng.choice(ids)
        f = a_feature(rng)
        p = 1 / (1 + math.exp(-(true_logit(f) + offsets[cid])))
        out.append(OfferOutcome(courier_id=cid, features=f, accepted=rng.random() < p))
    return out


def test_no_history_is_the_prior_for_every_courier_and_offer():
    model = fit_acceptance([])
    rng = random.Random(1)
    for cid in ("c1", "c2"):
        assert model.p(cid, a_feature(rng)) == pytest.approx(DEFAULT_PRIOR_P)
    assert model == AcceptanceModel.prior()


def test_recovers_known_acceptance_probabilities_from_generated_history():
    offsets = {f"c{i}": (-1.5 if i % 4 == 0 else 0.0) for i in range(20)}
    model = fit_acceptance(history(8000, seed=3, offsets=offsets), ridge=1.0)
    rng = random.Random(99)
    errors = []
    for _ in range(400):
        cid, f = f"c{rng.randrange(20)}", a_feature(rng)
        truth = 1 / (1 + math.exp(-(true_logit(f) + offsets[cid])))
        errors.append(abs(model.p(cid, f) - truth))
    assert float(np.mean(errors)) < 0.04, float(np.mean(errors))
    assert max(errors) < 0.15


def test_a_reluctant_courier_is_learnt_apart_from_the_rest():
    offsets = {"keen": 0.0, "reluctant": -2.5, **{f"c{i}": 0.0 for i in range(8)}}
    model = fit_acceptance(history(4000, seed=5, offsets=offsets))
    f = offer_features(pickup_m=1000, trip_m=2000, n_orders=1, at_s=NOON)
    assert model.p("reluctant", f) < model.p("keen", f) - 0.3
    assert model.p("nobody-yet", f) == pytest.approx(
        1 / (1 + math.exp(-float(np.dot(model.coef, design_row(f))))))


def test_a_courier_with_few_offers_is_shrunk_toward_the_model():
    base = history(3000, seed=7, offsets={f"c{i}": 0.0 for i in range(10)})
    f = base[0].features
    few = [OfferOutcome(courier_id="new", features=f, accepted=False)] * 2
    model = fit_acceptance(base + few)
    # Two refusals move a new courier only a little below the model (k = 20 pseudo-offers)
    assert model.p("nobody", f) - 0.1 < model.p("new", f) < model.p("nobody", f)


def test_far_pickups_are_learnt_as_less_likely():
    model = fit_acceptance(history(3000, seed=11, offsets={"c1": 0.0}))
    near = offer_features(pickup_m=200, trip_m=2000, n_orders=1, at_s=NOON)
    far = offer_features(pickup_m=4500, trip_m=2000, n_orders=1, at_s=NOON)
    assert model.p("c1", far) < model.p("c1", near)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 20_000),
                          st.floats(0, 30_000), st.integers(1, 4), st.floats(0, 86_399),
                          st.booleans()), max_size=40),
       st.floats(0, 50_000), st.floats(0, 50_000))
def test_probabilities_stay_in_the_unit_interval(rows, pickup_m, trip_m):
    hist = [OfferOutcome(courier_id=c, accepted=a,
                         features=offer_features(pickup_m=pm, trip_m=tm, n_orders=n, at_s=t))
            for c, pm, tm, n, t, a in rows]
    model = fit_acceptance(hist)
    f = offer_features(pickup_m=pickup_m, trip_m=trip_m, n_orders=2, at_s=NOON)
    for cid in ("a", "b", "c", "z"):
        assert 0.0 <= model.p(cid, f) <= 1.0
    assert all(math.isfinite(c) for c in model.coef)


def test_features_reject_nonsense_and_round_trip_through_the_event():
    f = offer_features(pickup_m=1234.5, trip_m=2500, n_orders=2, at_s=NOON)
    assert OfferFeatures.from_dict(f.as_dict()).pay_minor == f.pay_minor
    assert f.hour == pytest.approx(12.0)
    with pytest.raises(InvalidInput):
        OfferFeatures(pickup_m=-1, trip_m=0, pay_minor=0, est_min=1, n_orders=1, hour=0)
    with pytest.raises(InvalidInput):
        fit_acceptance([], prior_p=1.0)


# -- pricing ---------------------------------------------------------------------------


def _round(n_couriers: int = 2):
    orders = (_order(order_id="o1", pickup_x_m=0.0), _order(order_id="o2", pickup_x_m=3000.0,
                                                            merchant_id="r2"))
    couriers = tuple(_courier(courier_id=f"c{i}", x_m=1500.0 * i) for i in range(n_couriers))
    return _snapshot(orders=orders, couriers=couriers)


def _pricing(coef0: float, offsets: dict[str, float] | None = None) -> AcceptancePricing:
    coef = (coef0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return AcceptancePricing(model=AcceptanceModel(coef=coef, offsets=offsets or {}),
                             reoffer_delay_s=90.0)


def test_certain_acceptance_leaves_the_costs_unchanged():
    snap = _round()
    costs = round_costs(snap, DispatchPolicy())
    assert costs.times is not None
    priced = price_acceptance(costs.times.cost, costs.couriers, costs.bundles,
                              pricing=_pricing(60.0), weight=1.0, now_s=0.0, travel=TRAVEL,
                              pickup_service_s=240, dropoff_service_s=240, infeasible=INFEASIBLE)
    np.testing.assert_allclose(priced, costs.times.cost)


def test_lower_acceptance_costs_more_and_weight_zero_or_no_model_costs_nothing():
    snap = _round()
    costs = round_costs(snap, DispatchPolicy())
    assert costs.times is not None
    base = costs.times.cost
    kw = dict(now_s=0.0, travel=TRAVEL, pickup_service_s=240.0, dropoff_service_s=240.0,
              infeasible=INFEASIBLE)
    likely = price_acceptance(base, costs.couriers, costs.bundles, pricing=_pricing(2.0),
                              weight=1.0, **kw)
    unlikely = price_acceptance(base, costs.couriers, costs.bundles, pricing=_pricing(-2.0),
                                weight=1.0, **kw)
    assert (likely > base).all() and (unlikely > likely).all()
    # (1 - p) / p * |b| * delay exactly, p = sigmoid(-2): e^2 expected refusals
    np.testing.assert_allclose(unlikely - base, math.exp(2) * 90.0)
    assert price_acceptance(base, costs.couriers, costs.bundles, pricing=_pricing(-2.0),
                            weight=0.0, **kw) is base
    assert price_acceptance(base, costs.couriers, costs.bundles, pricing=None,
                            weight=1.0, **kw) is base


def test_infeasible_pairs_stay_infeasible():
    cost = np.array([[5.0, INFEASIBLE]])
    snap = _round(1)
    costs = round_costs(snap, DispatchPolicy())
    priced = price_acceptance(cost, costs.couriers, costs.bundles, pricing=_pricing(-3.0),
                              weight=2.0, now_s=0.0, travel=TRAVEL, pickup_service_s=240.0,
                              dropoff_service_s=240.0, infeasible=INFEASIBLE)
    assert priced[0, 1] == INFEASIBLE and priced[0, 0] > 5.0


def test_acceptance_matrix_is_a_probability_per_pair():
    snap = _round(3)
    costs = round_costs(snap, DispatchPolicy())
    model = fit_acceptance(history(500, seed=2, offsets={"c0": 0.0, "c1": -1.0}))
    p = acceptance_matrix(costs.couriers, costs.bundles, model=model, now_s=NOON, travel=TRAVEL,
                          pickup_service_s=240.0, dropoff_service_s=240.0)
    assert p.shape == (3, len(costs.bundles)) and ((p >= 0) & (p <= 1)).all()


def test_the_round_gives_the_order_to_the_courier_likelier_to_take_it():
    # Two idle couriers equally far from one order: today's tie goes to c0; with c0 known
    # to refuse almost everything the priced round offers it to c1.
    order = _order(order_id="o1", pickup_x_m=0.0, ready_s=30 * 60.0)
    couriers = (_courier(courier_id="c0", x_m=-1000.0), _courier(courier_id="c1", x_m=1000.0))
    snap = _snapshot(orders=(order,), couriers=couriers, now_s=25 * 60.0)
    plain = plan_round(snap, DispatchPolicy(allow_prepositioning=False))
    assert [a.courier_id for a in plain.assignments] == ["c0"]
    priced_snap = _snapshot(orders=(order,), couriers=couriers, now_s=25 * 60.0,
                            acceptance=_pricing(2.0, {"c0": -6.0}))
    priced = plan_round(priced_snap, DispatchPolicy(acceptance_weight=1.0,
                                                    allow_prepositioning=False))
    assert [a.courier_id for a in priced.assignments] == ["c1"]
    unpriced = plan_round(priced_snap, DispatchPolicy(allow_prepositioning=False))
    assert unpriced == plain


def test_acceptance_weight_must_not_be_negative():
    with pytest.raises(InvalidInput):
        DispatchPolicy(acceptance_weight=-1.0)
    with pytest.raises(InvalidInput):
        AcceptancePricing(model=AcceptanceModel.prior(), reoffer_delay_s=-5)


def test_a_courier_who_refused_an_order_is_priced_as_refusing_it_again():
    order = _order(order_id="o1", pickup_x_m=0.0, ready_s=30 * 60.0)
    couriers = (_courier(courier_id="c0", x_m=-1000.0), _courier(courier_id="c1", x_m=1000.0))
    pricing = AcceptancePricing(model=AcceptanceModel(coef=(30.0,) + (0.0,) * 6),
                                reoffer_delay_s=90.0, refused=frozenset({("c0", "o1")}))
    snap = _snapshot(orders=(order,), couriers=couriers, now_s=25 * 60.0, acceptance=pricing)
    costs = round_costs(snap, DispatchPolicy(acceptance_weight=1.0))
    plain = round_costs(snap, DispatchPolicy())
    assert costs.times is not None and plain.times is not None
    # p = 0 is floored at 2 %: (1 - 0) / 0.02 = 50 expected refusals of 90 s
    np.testing.assert_allclose(costs.times.cost - plain.times.cost, [[50 * 90.0], [0.0]],
                               atol=1e-6)
    plan = plan_round(snap, DispatchPolicy(acceptance_weight=1.0, allow_prepositioning=False))
    assert [a.courier_id for a in plan.assignments] == ["c1"]


def test_a_sparse_round_prices_its_arcs_exactly_as_the_dense_round_prices_its_pairs():
    # The same snapshot solved dense and sparse (dense_up_to_pairs=0): every candidate arc
    # carries the acceptance price of its matrix entry, refusals included.
    orders = tuple(_order(order_id=f"o{i}", merchant_id=f"r{i}", pickup_x_m=700.0 * i,
                          ready_s=30 * 60.0) for i in range(4))
    couriers = tuple(_courier(courier_id=f"c{i}", x_m=500.0 * i - 800.0) for i in range(5))
    pricing = AcceptancePricing(model=AcceptanceModel(coef=(0.5, -0.4, 0.0, 0.0, 0.0, 0.0, 0.0),
                                                      offsets={"c2": -2.0}),
                                reoffer_delay_s=90.0, refused=frozenset({("c1", "o2")}))
    snap = _snapshot(orders=orders, couriers=couriers, now_s=25 * 60.0, acceptance=pricing)
    dense = round_costs(snap, DispatchPolicy(acceptance_weight=1.0))
    sparse = round_costs(snap, DispatchPolicy(acceptance_weight=1.0, dense_up_to_pairs=0,
                                              candidate_k=2))
    plain = round_costs(snap, DispatchPolicy(dense_up_to_pairs=0, candidate_k=2))
    assert dense.times is not None and sparse.arcs is not None and plain.arcs is not None
    arcs = sparse.arcs
    np.testing.assert_array_equal(arcs.times.cost,
                                  dense.times.cost[arcs.courier_ix, arcs.bundle_ix])
    assert (arcs.times.cost > plain.arcs.times.cost).any()
