"""bench/experiments_stats.py at a tiny size: its parts return the keys the summary line
promises, with rates in [0, 1]."""

from __future__ import annotations

import experiments_stats


def test_aa_and_coverage_cover_every_design_with_rates() -> None:
    fpr, cov = experiments_stats.aa_and_coverage(reps=3, seed=1)
    assert set(fpr) == set(cov) == {"ab", "courier_ab", "switchback", "market_ab"}
    assert all(0 <= v <= 1 for v in [*fpr.values(), *cov.values()])


def test_network_and_interleaving_parts_report_their_figures() -> None:
    net = experiments_stats.network_aa(reps=3, seed=1)
    assert 0 <= net["naive_welch_fpr"] <= 1 and 0 <= net["cluster_robust_fpr"] <= 1
    il = experiments_stats.interleaving_sensitivity(seed=1, users=20_000)
    assert il["vanilla_vs_ab"] > 0 and il["dilution_removed_vs_ab"] > il["vanilla_vs_ab"]
