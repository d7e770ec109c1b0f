import itertools

import numpy as np

from lastmile.core.dispatch.costing import INFEASIBLE
from lastmile.core.dispatch.matching import optimal_matching


def test_matching_is_optimal_on_a_small_matrix():
    rng = np.random.default_rng(7)
    cost = rng.uniform(0, 100, size=(4, 4))
    pairs = optimal_matching(cost)
    best = min(sum(cost[i, p[i]] for i in range(4)) for p in itertools.permutations(range(4)))
    assert sum(cost[i, j] for i, j in pairs) == best


def test_matching_skips_infeasible_pairs():
    cost = np.array([[INFEASIBLE, INFEASIBLE], [1.0, INFEASIBLE]])
    assert optimal_matching(cost) == [(1, 0)]


def test_each_row_and_column_is_used_at_most_once():
    cost = np.random.default_rng(1).uniform(size=(5, 3))
    pairs = optimal_matching(cost)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs}) == 3


def test_an_empty_matrix_matches_nothing():
    assert optimal_matching(np.zeros((0, 3))) == []
