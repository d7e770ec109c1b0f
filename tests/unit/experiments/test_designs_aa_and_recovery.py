"""Bounded A/A and recovery runs on seeded synthetic data, one per design: the false-positive
rate sits in a binomial acceptance band around alpha, injected effects are covered at the
nominal rate, and on correlated (network-effect) units the naive test over-rejects while the
cluster-robust one holds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as st

from lastmile.core.errors import InvalidInput
from lastmile.core.experiments import synthetic as sy
from lastmile.core.experiments.means import welch
from lastmile.core.experiments.observations import Design, Observation
from lastmile.core.experiments.paired import InterleavingCredit
from lastmile.core.experiments.stats import analyze, analyze_interleaving

ALPHA = 0.05
Generator = Callable[[np.random.Generator, float], tuple[Observation, ...]]


def band(reps: int, rate: float) -> tuple[float, float]:
    """The 99.9% binomial acceptance band of a rate over ``reps`` independent replicates."""
    return (st.binom.ppf(0.0005, reps, rate) / reps, st.binom.ppf(0.9995, reps, rate) / reps)


DESIGNS: dict[str, tuple[Design, Generator, float]] = {
    "ab": ("ab", lambda r, eff: sy.ab(r, n=160, effect=eff), 0.4),
    "ab_ratio": ("ab", lambda r, eff: sy.ab(r, n=160, effect=eff, ratio=True), 0.4),
    "ab_cuped": ("ab", lambda r, eff: sy.ab(r, n=160, effect=eff, covariate_corr=0.7), 0.3),
    "courier_ab": ("courier_ab",
                   lambda r, eff: sy.clustered(r, clusters=40, cluster_size=4, icc=0.3,
                                               effect=eff), 0.5),
    "switchback": ("switchback",
                   lambda r, eff: sy.switchback(r, regions=3, windows=14, orders_per_window=4,
                                                icc=0.3, effect=eff), 0.5),
    "market_ab": ("market_ab",
                  lambda r, eff: sy.market(r, markets=36, pre=2, post=2, effect=eff), 1.0),
}


def _run(design: Design, gen: Generator, effect: float, reps: int, seed: int
         ) -> tuple[float, float, list[str]]:
    """(rejection rate, coverage of the true effect, methods used) over ``reps`` replicates."""
    rng = np.random.default_rng(seed)
    rejected = covered = 0
    methods = set()
    for _ in range(reps):
        (e,) = analyze(gen(rng, effect), design=design, alpha=ALPHA).effects
        rejected += e.p_value < ALPHA
        covered += e.ci[0] <= effect <= e.ci[1]
        methods.add(e.method)
    return rejected / reps, covered / reps, sorted(methods)


@pytest.mark.parametrize("name", list(DESIGNS))
def test_aa_false_positive_rate_is_nominal(name: str) -> None:
    design, gen, _ = DESIGNS[name]
    reps = 400 if name in ("ab", "courier_ab", "switchback", "market_ab") else 200
    fpr, _, methods = _run(design, gen, 0.0, reps, seed=100)
    lo, hi = band(reps, ALPHA)
    assert lo <= fpr <= hi, (name, fpr, methods)
    expected = {"ab": "welch", "ab_ratio": "delta", "ab_cuped": "cuped",
                "courier_ab": "cluster_robust", "switchback": "cluster_robust",
                "market_ab": "diff_in_diff"}[name]
    assert methods == [expected]


# CUPED's recovery is its known-answer test (test_estimators_known_answers.py); the rest here
@pytest.mark.parametrize("name", [n for n in DESIGNS if n != "ab_cuped"])
def test_injected_effect_is_recovered_with_nominal_coverage(name: str) -> None:
    design, gen, effect = DESIGNS[name]
    reps = 200
    _, coverage, _ = _run(design, gen, effect, reps, seed=200)
    lo, hi = band(reps, 1 - ALPHA)
    assert lo <= coverage <= hi, (name, coverage)


def test_network_effect_naive_welch_over_rejects_and_cluster_robust_holds() -> None:
    """Orders of one switchback window share the fleet state (icc 0.3, ~6 orders a window):
    treating orders as independent gives a design effect near 2.5, so Welch rejects far
    more than 5% of A/A runs; the cluster-robust test stays in the band."""
    rng = np.random.default_rng(7)
    reps = 200
    naive = robust = 0
    for _ in range(reps):
        obs = sy.switchback(rng, regions=3, windows=16, orders_per_window=6, icc=0.3)
        (e,) = analyze(obs, design="switchback").effects
        robust += e.p_value < ALPHA
        c = np.array([o.value for o in obs if o.variant == "control"])
        t = np.array([o.value for o in obs if o.variant == "treatment"])
        naive += st.ttest_ind(t, c, equal_var=False).pvalue < ALPHA
        assert abs(welch(c, t).effect - (t.mean() - c.mean())) < 1e-12
    lo, hi = band(reps, ALPHA)
    assert lo <= robust / reps <= hi
    assert naive / reps > hi + 0.05


def test_interleaving_aa_and_recovery() -> None:
    rng = np.random.default_rng(9)
    reps = 200
    fp = covered = 0
    for _ in range(reps):
        (e,) = analyze_interleaving(sy.interleaving(rng, users=200)).effects
        fp += e.p_value < ALPHA
    for _ in range(reps):
        credits = sy.interleaving(rng, users=200, lift=0.2)
        (e,) = analyze_interleaving(credits).effects
        kept = [c for c in credits if c.credit_a or c.credit_b]
        truth = 0.2 * float(np.mean([c.credit_a + c.credit_b for c in kept]))
        covered += e.ci[0] <= truth <= e.ci[1]
    assert band(reps, ALPHA)[0] <= fp / reps <= band(reps, ALPHA)[1]
    assert band(reps, 1 - ALPHA)[0] <= covered / reps <= band(reps, 1 - ALPHA)[1]


def test_dilution_removal_raises_the_preference_signal_per_engaged_unit() -> None:
    credits = sy.interleaving(np.random.default_rng(4), users=2000, lift=0.2,
                              engaged_share=0.2)
    (kept,) = analyze_interleaving(credits).effects
    (diluted,) = analyze_interleaving(credits, remove_non_engaged=False).effects
    assert kept.n_control < 0.3 * diluted.n_control
    assert kept.effect > 3 * diluted.effect
    assert kept.p_value == pytest.approx(diluted.p_value, rel=0.5)


def test_interleaving_credit_refuses_non_positive_exposures() -> None:
    with pytest.raises(InvalidInput, match="exposures must be > 0"):
        InterleavingCredit(unit="u", credit_a=1, credit_b=0, exposures=0)
