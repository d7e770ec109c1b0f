"""The simulator's validation helpers: rates with day-clustered intervals
(``sim.validation``) and the interleaving-vs-A/B model (``sim.interleaving``)."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.proportion import proportion_confint

from lastmile.core.experiments.stats import analyze, analyze_interleaving
from lastmile.sim.interleaving import Feed, sample, sensitivity
from lastmile.sim.validation import rate_interval


def test_independent_looking_days_give_the_plain_wilson_interval() -> None:
    days = [[True, False, False, False, False]] * 4  # every day the same rate: deff 1
    got = rate_interval(days)
    lo, hi = proportion_confint(4, 20, alpha=0.05, method="wilson")
    assert got["rate"] == pytest.approx(0.2) and got["tests"] == 20
    assert got["ci"] == pytest.approx([lo, hi]) and got["effective_tests"] == 20


def test_tests_that_move_together_within_a_day_count_as_fewer() -> None:
    days = [[True] * 5, [False] * 5, [False] * 5, [True] * 5, [False] * 5, [False] * 5]
    got = rate_interval(days)
    assert got["rate"] == pytest.approx(1 / 3)
    assert got["effective_tests"] <= 6.5  # 30 tests, but only 6 days' worth of information
    naive = proportion_confint(10, 30, alpha=0.05, method="wilson")
    assert got["ci"][1] - got["ci"][0] > naive[1] - naive[0]


def test_no_tests_is_nan_not_a_rate() -> None:
    got = rate_interval([[], []])
    assert got["tests"] == 0 and math.isnan(got["rate"])


def test_interleaving_needs_fewer_exposures_than_ab_for_a_better_ranker() -> None:
    s = sensitivity(sessions=400, seed=3)
    assert s.ab_effect > 0 and s.preference > 0
    assert 0 < s.engaged_share < 1
    assert s.interleaving_exposures < s.ab_exposures and s.ratio > 1


def test_an_unchanged_ranker_has_no_preference_and_no_ratio() -> None:
    s = sensitivity(sessions=100, seed=3, feed=Feed(improvement=0.0))
    assert s.ab_effect == 0 and s.preference == 0
    assert math.isinf(s.ab_exposures) and math.isinf(s.interleaving_exposures)
    assert math.isnan(s.ratio)


def test_drawn_sessions_feed_the_platforms_tests() -> None:
    obs, credits = sample(sessions=3_000, seed=5, feed=Feed(improvement=0.5))
    (il,) = analyze_interleaving(credits).effects
    assert il.effect > 0 and il.p_value < 0.01
    (ab,) = analyze(obs, design="ab").effects
    assert ab.ci[0] < ab.effect < ab.ci[1] and ab.n_control + ab.n_variant == 3_000
