"""The always-valid test (mSPRT) and the power formulas, against closed forms computed
independently, statsmodels' power solver, and a peeking A/A run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.power import NormalIndPower

from lastmile.core.errors import InvalidInput
from lastmile.core.experiments import power as pw
from lastmile.core.experiments.sequential import (
    SequentialResult,
    mixture_variance,
    msprt,
    running,
)


def test_msprt_interval_is_growthbooks_closed_form() -> None:
    """GrowthBook's sequential interval: with N units, per-unit variance s2 = se^2 N and
    rho^2 = (-2 ln a + ln(-2 ln a + 1)) / N*, the half-width is
    sqrt(s2 * 2 (N rho^2 + 1) / (N^2 rho^2) * ln(sqrt(N rho^2 + 1) / a))."""
    effect, se, n, a, tuning = 0.3, 0.12, 2400, 0.05, 5000
    rho2 = (-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / tuning
    s2 = se * se * n
    half = math.sqrt(s2 * 2 * (n * rho2 + 1) / (n * n * rho2)
                     * math.log(math.sqrt(n * rho2 + 1) / a))
    r = msprt(effect=effect, se=se, n=n, alpha=a, tuning_n=tuning)
    assert r.ci == (pytest.approx(effect - half, rel=1e-12), pytest.approx(effect + half, rel=1e-12))
    tau2 = mixture_variance(sigma2=s2, alpha=a, tuning_n=tuning)
    v = se * se
    lam = math.sqrt(v / (v + tau2)) * math.exp(tau2 * effect**2 / (2 * v * (v + tau2)))
    assert r.p_value == pytest.approx(min(1.0, 1 / lam), rel=1e-12)


def test_the_always_valid_interval_is_wider_than_the_fixed_one_and_agrees_with_its_p() -> None:
    r = msprt(effect=0.5, se=0.1, n=1000, alpha=0.05)
    fixed = 1.96 * 0.1
    assert r.ci[1] - 0.5 > fixed
    # 0 lies outside the interval exactly when the always-valid p-value is below alpha
    assert (r.ci[0] > 0) == (r.p_value < 0.05)
    r0 = msprt(effect=0.05, se=0.1, n=1000, alpha=0.05)
    assert r0.ci[0] < 0 and r0.p_value >= 0.05


def test_peeking_every_day_inflates_the_fixed_test_but_not_the_always_valid_one() -> None:
    """400 A/A streams of 3,000 units each, looked at every 100 units (30 looks): stopping
    at the first look whose fixed 95% interval excludes 0 rejects far more than 5% of the
    streams; stopping on the always-valid interval rejects at most about 5%."""
    rng = np.random.default_rng(21)
    streams, n, step = 400, 3000, 100
    diffs = rng.normal(0, 1, (streams, n)) - rng.normal(0, 1, (streams, n))
    looks = np.arange(step, n + 1, step)
    sums = np.cumsum(diffs, axis=1)[:, looks - 1]
    naive = always = 0
    for s in range(streams):
        fixed_hit = seq_hit = False
        for j, k in enumerate(looks):
            est, se = sums[s, j] / k, math.sqrt(2.0 / k)
            fixed_hit |= abs(est / se) > 1.96
            seq_hit |= msprt(effect=est, se=se, n=int(2 * k), alpha=0.05).p_value < 0.05
        naive += fixed_hit
        always += seq_hit
    assert naive / streams > 0.15
    assert always / streams <= st.binom.ppf(0.999, streams, 0.05) / streams


def test_running_intersects_intervals_and_keeps_the_smallest_p() -> None:
    looks = [SequentialResult(ci=(-1.0, 2.0), p_value=0.6),
             SequentialResult(ci=(-0.5, 2.5), p_value=0.8),
             SequentialResult(ci=(0.2, 1.0), p_value=0.04)]
    out = running(looks)
    assert [r.ci for r in out] == [(-1.0, 2.0), (-0.5, 2.0), (0.2, 1.0)]
    assert [r.p_value for r in out] == [0.6, 0.6, 0.04]


def test_mde_and_power_match_statsmodels_normal_ind_power() -> None:
    sd, n1, n2, a = 4.0, 1200, 800, 0.05
    m = pw.mde(sd=sd, n_control=n1, n_variant=n2, alpha=a, power=0.8)
    es = NormalIndPower().solve_power(nobs1=n2, ratio=n1 / n2, alpha=a, power=0.8)
    # the closed form drops the far tail, which statsmodels' solver keeps (~1e-6 relative)
    assert m == pytest.approx(es * sd, rel=1e-5)
    p = pw.power_of(effect=0.5, sd=sd, n_control=n1, n_variant=n2, alpha=a)
    ref = NormalIndPower().power(effect_size=0.5 / sd, nobs1=n2, ratio=n1 / n2, alpha=a)
    assert p == pytest.approx(ref, rel=1e-9)
    assert pw.power_of(effect=m, sd=sd, n_control=n1, n_variant=n2) == pytest.approx(0.8, abs=1e-4)


def test_design_effect_with_unequal_cluster_sizes() -> None:
    assert pw.design_effect(mean_cluster_size=10, icc=0.0) == 1.0
    assert pw.design_effect(mean_cluster_size=10, icc=0.1) == pytest.approx(1.9)
    assert pw.design_effect(mean_cluster_size=10, icc=0.1, cv=0.5) == pytest.approx(2.15)


def test_duration_is_the_first_whole_week_whose_mde_reaches_the_effect() -> None:
    kw = {"sd": 10.0, "units_per_week": 2000.0}
    weeks = pw.weeks_needed(effect=0.6, **kw)
    assert weeks is not None and weeks > 1
    assert pw.mde_after_weeks(weeks=weeks, **kw) <= 0.6 < pw.mde_after_weeks(weeks=weeks - 1, **kw)
    # a switchback (more windows each week) needs longer than independent units
    sb = pw.Clustering(icc=0.05, cluster_size=20)
    assert (pw.weeks_needed(effect=0.6, clustering=sb, **kw) or 99) > weeks


def test_a_courier_ab_whose_clusters_only_grow_may_never_reach_the_effect() -> None:
    """More weeks add orders to the same couriers: with icc 0.2 the MDE plateaus near
    2.8 * sd * sqrt(icc) * sqrt(4 / couriers) and a smaller effect is never detected."""
    couriers = pw.Clustering(icc=0.2, cluster_size=25, grows_weekly=True)
    kw = {"sd": 10.0, "units_per_week": 100 * 25.0, "clustering": couriers}
    assert pw.weeks_needed(effect=1.0, **kw) is None
    assert pw.weeks_needed(effect=3.0, **kw) is not None


def test_simulated_power_counts_rejections_with_a_wilson_interval() -> None:
    res = pw.simulated_power([0.01, 0.2, 0.04, 0.5, 0.049, 0.9, 0.05, 0.3], alpha=0.05)
    assert (res.rejections, res.simulations, res.power) == (3, 8, 0.375)
    z = st.norm.ppf(0.975)
    centre = (0.375 + z * z / 16) / (1 + z * z / 8)
    assert (res.ci[0] + res.ci[1]) / 2 == pytest.approx(centre, rel=1e-9)


def test_simulation_seeds_are_reproducible_and_distinct() -> None:
    a, b = pw.simulation_seeds(3, 50), pw.simulation_seeds(3, 50)
    assert a == b and len(set(a)) == 50 and pw.simulation_seeds(4, 50) != a


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"sd": 0.0, "n_control": 10, "n_variant": 10}, "sd_invalid"),
    ({"sd": 1.0, "n_control": 10, "n_variant": 10, "alpha": 1.5}, "alpha_invalid"),
    ({"sd": 1.0, "n_control": -1, "n_variant": 10}, "n_control_invalid"),
])
def test_power_inputs_are_refused_naming_the_field(kwargs: dict[str, float], code: str) -> None:
    with pytest.raises(InvalidInput) as err:
        pw.mde(**kwargs)
    assert err.value.code == code and err.value.field == code.removesuffix("_invalid")


def test_two_alike_experiments_split_the_markets_in_half() -> None:
    r = pw.Requirement(effect=0.5, sd=10.0, units_per_week=4000.0)
    s = pw.split_markets(r, r)
    assert s.weeks_first == s.weeks_second and s.share_first in (0.45, 0.5, 0.55)


def test_the_experiment_needing_more_data_gets_more_markets() -> None:
    """A switchback (design effect 1 + 19 x 0.1 = 2.9) and an order-level test of the same
    effect: the switchback needs ~2.9 times the volume, so it gets ~70-75% of the markets
    (the seed's 70/30), and both finish in the same number of weeks."""
    sb = pw.Requirement(effect=0.5, sd=10.0, units_per_week=4000.0,
                        clustering=pw.Clustering(icc=0.1, cluster_size=20))
    ab = pw.Requirement(effect=0.5, sd=10.0, units_per_week=4000.0)
    s = pw.split_markets(sb, ab)
    assert 0.65 <= s.share_first <= 0.8
    assert s.weeks_first is not None and s.weeks_second is not None
    assert abs(s.weeks_first - s.weeks_second) <= 1
    half = pw.split_markets(sb, ab, step=0.5)
    assert half.weeks_first is not None and half.weeks_first > s.weeks_first
