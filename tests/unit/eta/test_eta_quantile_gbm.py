"""LightGBM quantile ETA: ordered quantiles, conformal 80% windows, the two stages."""

from __future__ import annotations

import numpy as np
import pytest

from lastmile.adapters.eta_model_files import load_model, save_model
from lastmile.core.errors import InvalidInput
from lastmile.core.eta.engine import HeuristicModel, no_queue_point
from lastmile.core.eta.quantile_gbm import (
    TOLERANCE_S,
    from_parts,
    to_parts,
    train_quantile_gbm,
    train_two_stage,
)

from .builders import COL, a_table


@pytest.fixture(scope="module")
def cart_sensitive():
    """A model trained where each item beyond the first adds four minutes."""
    fit, cal = a_table(3000, seed=11, cart_s=240.0), a_table(1000, seed=12, cart_s=240.0)
    return train_two_stage(fit, cal, rounds=80)


def test_with_no_queue_the_heuristic_is_the_later_of_food_and_courier_plus_the_drive():
    m = a_table(3, seed=1).matrix
    m[:, COL["orders_per_min_5"]], m[:, COL["idle_couriers_5"]] = 0.0, 3.0
    point, p10, p90 = HeuristicModel().predict_batch(m)
    expected = np.maximum(m[:, COL["prep_mean_s"]], 300) + m[:, COL["travel_s"]]
    assert point == pytest.approx(expected) and no_queue_point(m) == pytest.approx(expected)
    assert p10 == pytest.approx(0.8 * expected) and p90 == pytest.approx(1.7 * expected)


def test_a_queue_for_couriers_adds_to_the_point_beyond_the_no_queue_point():
    m = a_table(3, seed=1).matrix
    m[:, COL["prep_mean_s"]], m[:, COL["orders_per_min_5"]] = 0.0, 2.0
    m[:, COL["idle_couriers_5"]] = 0.0
    point, _, _ = HeuristicModel().predict_batch(m)
    assert np.all(point > no_queue_point(m))


def test_quantiles_are_ordered_on_any_rows():
    model = train_quantile_gbm(a_table(1500, seed=1), a_table(500, seed=2), rounds=60)
    odd = a_table(2000, seed=3).matrix
    odd[:, COL["idle_couriers_5"]] = np.random.default_rng(0).uniform(0, 400, len(odd))
    point, p10, p90 = model.predict_batch(odd)
    assert np.all(p10 >= 0) and np.all(p10 <= point) and np.all(point <= p90)


def test_conformal_windows_hold_about_80_percent_of_fresh_deliveries():
    model = train_quantile_gbm(a_table(3000, seed=4), a_table(1500, seed=5), rounds=80)
    test = a_table(4000, seed=6)
    point, p10, p90 = model.predict_batch(test.matrix)
    inside = np.mean((test.total_s >= p10) & (test.total_s <= p90))
    assert 0.75 <= inside <= 0.85
    assert np.mean(np.abs(point - test.total_s)) < np.mean(
        np.abs(no_queue_point(test.matrix) - test.total_s))


def test_explore_ignores_the_cart(cart_sensitive):
    t = a_table(500, seed=7, cart_s=240.0)
    changed = t.matrix.copy()
    changed[:, COL["items"]] = 5
    changed[:, COL["subtotal_minor"]] = 99_999
    a = cart_sensitive.explore(t.matrix, t.merchant)
    b = cart_sensitive.explore(changed, t.merchant)
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y)


def test_checkout_never_leaves_the_explore_tolerance(cart_sensitive):
    t = a_table(3000, seed=8, cart_s=240.0)
    t.matrix[: len(t) // 2, COL["items"]] = 30  # far outside training: the clip must hold
    c_point, c10, c90 = cart_sensitive.checkout(t.matrix, t.merchant)
    e_point, _, _ = cart_sensitive.explore(t.matrix, t.merchant)
    raw, _, _ = cart_sensitive.checkout_model.predict_batch(t.matrix)
    assert np.max(np.abs(c_point - e_point)) <= TOLERANCE_S + 1e-6
    assert np.any(np.abs(raw - e_point) > TOLERANCE_S)  # the clip was needed somewhere
    assert np.all(c10 <= c_point) and np.all(c_point <= c90)


def test_checkout_uses_the_cart_within_the_tolerance(cart_sensitive):
    t = a_table(2000, seed=9, cart_s=240.0)
    c_point, _, _ = cart_sensitive.checkout(t.matrix, t.merchant)
    e_point, _, _ = cart_sensitive.explore(t.matrix, t.merchant)
    assert np.mean(np.abs(c_point - t.total_s)) < np.mean(np.abs(e_point - t.total_s))


def test_rows_without_a_cart_get_the_explore_estimate(cart_sensitive):
    t = a_table(200, seed=10, with_cart=False)
    c = cart_sensitive.checkout(t.matrix, t.merchant)
    e = cart_sensitive.explore(t.matrix, t.merchant)
    for x, y in zip(c, e, strict=True):
        assert x == pytest.approx(y)


def test_a_model_round_trips_through_its_folder(cart_sensitive, tmp_path):
    t = a_table(300, seed=13)
    loaded = load_model(save_model(cart_sensitive, tmp_path / "m"))
    for x, y in zip(cart_sensitive.checkout(t.matrix, t.merchant),
                    loaded.checkout(t.matrix, t.merchant), strict=True):
        assert x == pytest.approx(y)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "booster_p10.txt", "booster_p50.txt", "booster_p90.txt", "model.json"]


def test_a_model_of_other_features_is_refused(cart_sensitive):
    meta, texts = to_parts(cart_sensitive)
    with pytest.raises(ValueError, match="features differ"):
        from_parts({**meta, "features": ["hour"]}, texts)


def test_a_missing_model_folder_is_invalid_input(tmp_path):
    with pytest.raises(InvalidInput) as exc:
        load_model(tmp_path / "nope")
    assert exc.value.code == "model_not_found"


def test_estimates_serve_each_row_at_its_own_stage(cart_sensitive):
    from lastmile.core.eta.features import EtaFeatures

    common = dict(merchant_id="m1", region="r", hour=12, weekday=2, distance_m=2000.0,
                  travel_s=700.0, prep_mean_s=600.0, prep_p90_s=780.0,
                  orders_per_min=(1.0,) * 6, idle_couriers=(3.0,) * 6)
    explore = EtaFeatures(**common)
    checkout = EtaFeatures(**common, items=5, subtotal_minor=6000)
    e, c = cart_sensitive.estimates([explore, checkout])
    assert e.model == c.model == cart_sensitive.name
    assert 0 <= e.p10_s <= e.point_s <= e.p90_s
    assert c.point_s > e.point_s  # five items: later than the typical cart
    assert c.point_s - e.point_s <= TOLERANCE_S + 1e-6
