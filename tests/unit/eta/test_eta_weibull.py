"""The seed's Weibull fitted by interval regression (least squares on log(-log S))."""

from __future__ import annotations

import numpy as np
import pytest

from lastmile.core.eta.weibull import (
    WeibullParams,
    fit_interval_regression,
    fit_weibull_groups,
    survival_points,
    weibull_cdf,
    weibull_quantile,
)

from .builders import a_table


def draws(k: float, lam: float, gamma: float, n: int, seed: int = 1) -> np.ndarray:
    return gamma + lam * np.random.default_rng(seed).weibull(k, n)


def test_recovers_the_seeds_parameters_from_six_minute_histograms():
    # 004 L385: k=3.37, lam=0.27, gamma=0.11 (hours); 6-minute buckets are 0.1 h.
    fit = fit_interval_regression(draws(3.37, 0.27, 0.11, 1_000_000), bucket=0.1)
    assert fit.k == pytest.approx(3.37, rel=0.10)
    assert fit.lam == pytest.approx(0.27, rel=0.10)
    assert fit.gamma == pytest.approx(0.11, rel=0.10)


def test_recovers_a_delivery_sized_weibull_in_seconds():
    fit = fit_interval_regression(draws(1.8, 1500.0, 600.0, 50_000))
    assert fit.k == pytest.approx(1.8, rel=0.10)
    assert fit.lam == pytest.approx(1500.0, rel=0.10)
    assert fit.gamma == pytest.approx(600.0, rel=0.15)


def test_the_location_is_never_negative():
    # Shifted left of zero the best unconstrained location would be negative.
    d = np.clip(draws(0.9, 900.0, 0.0, 20_000) - 60.0, 1.0, None)
    assert fit_interval_regression(d).gamma >= 0.0


def test_the_location_never_exceeds_the_shortest_delivery():
    d = draws(2.0, 1200.0, 900.0, 5_000)
    assert fit_interval_regression(d).gamma <= d.min()


def test_too_few_histogram_edges_is_refused():
    with pytest.raises(ValueError, match="histogram edges"):
        fit_interval_regression(np.array([100.0, 200.0, 300.0]))


def test_survival_points_are_the_share_beyond_each_edge():
    t, s = survival_points(np.array([100.0, 400.0, 500.0, 800.0]), bucket=360.0)
    assert t.tolist() == [360.0, 720.0]
    assert s.tolist() == [0.75, 0.25]


def test_quantile_inverts_the_cdf():
    p = np.array([0.1, 0.5, 0.9])
    q = weibull_quantile(p, 2.0, 1000.0, 300.0)
    assert weibull_cdf(q, 2.0, 1000.0, 300.0) == pytest.approx(p)
    assert weibull_cdf(np.array([299.0]), 2.0, 1000.0, 300.0)[0] == 0.0


def test_params_refuse_a_negative_location():
    with pytest.raises(ValueError, match="gamma >= 0"):
        WeibullParams(k=2.0, lam=1.0, gamma=-0.1)


def test_grouped_model_gives_ordered_quantiles_and_calibrated_tails():
    train, test = a_table(4000, seed=1), a_table(4000, seed=2)
    model = fit_weibull_groups(train)
    point, p10, p90 = model.predict_batch(test.matrix)
    assert np.all(p10 <= point) and np.all(point <= p90)
    inside = np.mean((test.total_s >= p10) & (test.total_s <= p90))
    assert 0.70 <= inside <= 0.90
