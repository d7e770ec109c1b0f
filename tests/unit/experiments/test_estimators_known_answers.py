"""The estimators against answers computed independently: scipy's t-tests, a bootstrap, a
cluster-robust sandwich written out with numpy, statsmodels' power solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_h
from scipy import stats as st

from lastmile.core.errors import InvalidInput
from lastmile.core.experiments import means
from lastmile.core.experiments.clustered import cluster_fit
from lastmile.core.experiments.estimates import Estimate, to_effect
from lastmile.core.experiments.observations import Observation
from lastmile.core.experiments.paired import InterleavingCredit, paired_preference
from lastmile.core.experiments.stats import analyze


def test_welch_matches_scipy_ttest_ind_unequal_variances() -> None:
    rng = np.random.default_rng(11)
    c, v = rng.normal(5.0, 1.0, 57), rng.normal(5.4, 2.5, 83)
    est = means.welch(c, v)
    eff = to_effect(est, variant="t", metric="m", alpha=0.05)
    ref = st.ttest_ind(v, c, equal_var=False)
    lo, hi = ref.confidence_interval(0.95)
    assert eff.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert est.df == pytest.approx(ref.df, rel=1e-9)
    assert eff.ci == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    assert eff.effect == pytest.approx(v.mean() - c.mean())


def test_analyze_ab_is_welch_on_the_observations() -> None:
    values = {"control": [3.0, 4.0, 5.0, 4.5], "treatment": [5.0, 6.5, 5.5, 7.0, 6.0]}
    obs = [Observation(unit=f"{arm}{i}", variant=arm, value=x)
           for arm, xs in values.items() for i, x in enumerate(xs)]
    a = analyze(obs, design="ab")
    ref = st.ttest_ind(values["treatment"], values["control"], equal_var=False)
    (e,) = a.effects
    assert (e.method, e.n_control, e.n_variant) == ("welch", 4, 5)
    assert e.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert e.relative == pytest.approx(e.effect / 4.125)


def _ratio_fixture(rng: np.random.Generator, n: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    orders = rng.poisson(2.0, n) + 1.0
    minutes = orders * (30.0 + lift + rng.normal(0, 4.0, n)) + rng.normal(0, 3.0, n) * np.sqrt(orders)
    return minutes, orders


def test_delta_method_standard_error_agrees_with_a_bootstrap() -> None:
    rng = np.random.default_rng(5)
    yc, xc = _ratio_fixture(rng, 300, 0.0)
    yv, xv = _ratio_fixture(rng, 300, 1.0)
    est = means.ratio_delta(yc, xc, yv, xv)
    assert est.effect == pytest.approx(yv.sum() / xv.sum() - yc.sum() / xc.sum())
    boot = np.empty(2000)
    for b in range(len(boot)):
        ic, iv = rng.integers(0, 300, 300), rng.integers(0, 300, 300)
        boot[b] = yv[iv].sum() / xv[iv].sum() - yc[ic].sum() / xc[ic].sum()
    assert est.se == pytest.approx(boot.std(ddof=1), rel=0.08)


def test_cuped_uses_the_pooled_theta_and_shrinks_the_variance_by_one_minus_rho_squared() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 4000)
    y = 10 + 0.8 * x + 0.6 * rng.normal(0, 1, 4000)
    t = rng.random(4000) < 0.5
    y = y + 0.1 * t
    est = means.cuped(y[~t], x[~t], y[t], x[t])
    theta = np.cov(x, y)[0, 1] / x.var(ddof=1)
    adj = y - theta * (x - x.mean())
    assert est.effect == pytest.approx(adj[t].mean() - adj[~t].mean(), rel=1e-12)
    raw = means.welch(y[~t], y[t])
    rho = np.corrcoef(x, y)[0, 1]
    assert (est.se / raw.se) ** 2 == pytest.approx(1 - rho**2, abs=0.02)
    assert (est.control_mean, est.variant_mean) == (pytest.approx(y[~t].mean()),
                                                    pytest.approx(y[t].mean()))


def test_cluster_fit_equals_the_cr1_sandwich_written_out() -> None:
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(12), rng.integers(2, 7, 12))
    treat = (g % 2).astype(float)
    y = 1.0 + 0.5 * treat + rng.normal(0, 1, 12)[g] + rng.normal(0, 1, len(g))
    tau, se, df, groups = cluster_fit(y=y, treatment=treat, clusters=[f"c{k}" for k in g])
    x = np.column_stack([np.ones(len(y)), treat])
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ x.T @ y
    u = y - x @ beta
    meat = sum(np.outer(x[g == k].T @ u[g == k], x[g == k].T @ u[g == k]) for k in range(12))
    n, k, gs = len(y), 2, 12
    v = gs / (gs - 1) * (n - 1) / (n - k) * bread @ meat @ bread
    assert tau == pytest.approx(beta[1], rel=1e-10)
    assert se == pytest.approx(math.sqrt(v[1, 1]), rel=1e-8)
    assert (df, groups) == (11.0, 12)


def test_paired_preference_matches_scipy_ttest_rel_after_dropping_non_engaged_units() -> None:
    credits = [InterleavingCredit(unit="a", credit_a=1, credit_b=3),
               InterleavingCredit(unit="b", credit_a=0, credit_b=0),
               InterleavingCredit(unit="c", credit_a=2, credit_b=2),
               InterleavingCredit(unit="d", credit_a=0, credit_b=1),
               InterleavingCredit(unit="e", credit_a=1, credit_b=4),
               InterleavingCredit(unit="f", credit_a=0, credit_b=0)]
    est, dropped = paired_preference(credits)
    eff = to_effect(est, variant="b", metric="clicks", alpha=0.05)
    ref = st.ttest_rel([3, 2, 1, 4], [1, 2, 0, 1])
    assert dropped == 2
    assert eff.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert eff.effect == pytest.approx(1.5)
    kept_all, none_dropped = paired_preference(credits, remove_non_engaged=False)
    assert none_dropped == 0 and kept_all.effect == pytest.approx(1.0)


def test_a_constant_outcome_gives_a_point_interval_not_nan() -> None:
    est = Estimate(effect=0.0, se=0.0, df=None, control_mean=1.0, variant_mean=1.0,
                   n_control=3, n_variant=3, method="welch", n_sequential=6)
    e = to_effect(est, variant="t", metric="m", alpha=0.05)
    assert (e.ci, e.p_value, e.sequential_ci) == ((0.0, 0.0), 1.0, (0.0, 0.0))


def test_an_arm_of_one_unit_is_refused_naming_the_rule() -> None:
    with pytest.raises(InvalidInput) as err:
        means.welch(np.array([1.0]), np.array([1.0, 2.0]))
    assert err.value.code == "too_few_units" and "control" in err.value.message


@settings(max_examples=15, deadline=None)
@given(shift=st_h.floats(-100, 100), seed=st_h.integers(0, 10_000),
       design=st_h.sampled_from(["ab", "courier_ab"]))
def test_an_effect_ignores_a_common_shift_and_flips_sign_when_the_arms_swap(
        shift: float, seed: int, design: str) -> None:
    from dataclasses import replace

    from lastmile.core.experiments import synthetic as sy

    rng = np.random.default_rng(seed)
    obs = (sy.ab(rng, n=60, effect=0.3) if design == "ab"
           else sy.clustered(rng, clusters=12, cluster_size=4, icc=0.2, effect=0.3))
    (base,) = analyze(obs, design=design).effects  # type: ignore[arg-type]
    shifted = [replace(o, value=o.value + shift) for o in obs]
    (moved,) = analyze(shifted, design=design).effects  # type: ignore[arg-type]
    assert moved.effect == pytest.approx(base.effect, abs=1e-6)
    assert moved.p_value == pytest.approx(base.p_value, abs=1e-6)
    swap = {"control": "treatment", "treatment": "control"}
    swapped = [replace(o, variant=swap[o.variant]) for o in obs]
    (flipped,) = analyze(swapped, design=design).effects  # type: ignore[arg-type]
    assert flipped.effect == pytest.approx(-base.effect, abs=1e-9)
    assert flipped.p_value == pytest.approx(base.p_value, rel=1e-6)


def test_a_cluster_fit_with_no_more_observations_than_parameters_names_the_rule() -> None:
    # 4 markets, a treatment and 2 stratum dummies: 4 parameters, 4 observations. statsmodels'
    # cluster covariance would divide by n - k = 0.
    y = np.array([1.0, 2.0, 3.0, 4.0])
    treat = np.array([0.0, 1.0, 0.0, 1.0])
    strata = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(InvalidInput) as few:
        cluster_fit(y=y, treatment=treat, clusters=["a", "b", "c", "d"], controls=strata)
    assert few.value.code == "too_few_units" and few.value.field == "observations"
