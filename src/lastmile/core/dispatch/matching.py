"""Optimal courier-bundle matching: dense on a cost matrix, sparse on candidate arcs.

**Dense** (rounds of at most ``DispatchPolicy.dense_up_to_pairs`` pairs, every MDRP
round). Choice, by measurement on this machine with the cost matrices of
``bench/dispatch_scaling`` rounds (LSA = scipy ``linear_sum_assignment`` or
OR-Tools ``SimpleLinearSumAssignment``; min-cost flow = OR-Tools
``SimpleMinCostFlow``; OR-Tools fed with vectorised arc arrays on costs scaled
to integer tenths of a second):

| couriers x bundles | scipy LSA | OR-Tools LSA | OR-Tools min-cost flow |
|---|---|---|---|
| 250 x 125   | 0.2 ms  | 0.45 ms | - |
| 1000 x 500  | 3.9 ms  | 9.0 ms  | - |
| 1000 x 1000 | 320 ms  | 206 ms  | 543 ms |
| 2000 x 2000 | 2.7 s   | 1.2 s   | 3.6 s |

Dense rounds are rectangular and at most a few hundred wide: there scipy is 2-3x
faster, takes float costs as they are and needs no graph building. The transposed
matrix is solved (bundles as rows; see ``optimal_matching``). Infeasible pairs carry a
large finite cost and are dropped after the solve.

**Sparse** (larger rounds: the arcs of ``candidates.candidate_arcs``). Measured on the
arcs of the bench's 4,000 round (74,651 arcs, 2,615 bundles x 3,254 couriers; a shared
machine at load ~11, so absolute figures are inflated, ratios hold), same optimum for
all three:

| solver on the same arcs | time |
|---|---|
| scipy ``min_weight_full_bipartite_matching`` (LAPJVsp), float costs | 209-319 ms |
| OR-Tools ``SimpleLinearSumAssignment`` (integer costs; a perfect matching needs mirrored dummy arcs, and a dummy price above ~1e9 overflows its price bound) | 2,005 ms |
| OR-Tools ``SimpleMinCostFlow`` (integer costs, source/sink arcs) | 2,598-2,837 ms |
| dense scipy LSA on the same round's full matrix (2,000 round, 1,632 x 1,304) | 1,571-2,001 ms (sparse: 46-95 ms) |

An auction algorithm was not tried: no compiled one is in the environment and a numpy
auction's bidding rounds lose to LAPJVsp's C loop at these sizes. LAPJVsp grows faster
than its arcs (20,000 round, 362,340 arcs: 4.3-5.4 s), so a round with more bundles than
``cell_bundles`` is solved as region cells (``partition``; 9 cells: 0.8-1.2 s, 1 % fewer
bundles served than the whole solve). scipy's Hopcroft-Karp maximum matching took 2.7 s
on those arcs, which is why ``candidates`` covers with a greedy matching instead.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_array
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from lastmile.core.dispatch.costing import INFEASIBLE


def optimal_matching(cost: NDArray[np.float64]) -> list[tuple[int, int]]:
    """Min-cost matching (row, column) pairs, skipping pairs priced ``INFEASIBLE``.

    Every row and every column appears at most once; an empty matrix gives [].
    """
    if cost.size == 0:
        return []
    # Solved with bundles as rows: scipy's solver augments one row at a time, and on our
    # matrices (couriers x bundles) it converges far faster from the bundle side, for the
    # same optimum: bench/dispatch_scaling.py measured 2000 x 2000 at 3.0 s -> 0.25 s and
    # 4000 x 4000 at 37 s -> 1.8 s.
    cols, rows = linear_sum_assignment(cost.T)
    order = np.argsort(rows, kind="stable")
    rows, cols = rows[order], cols[order]
    keep = cost[rows, cols] < INFEASIBLE
    return [(int(r), int(c)) for r, c in zip(rows[keep], cols[keep], strict=True)]


def sparse_matching(
    n_couriers: int,
    n_bundles: int,
    courier_ix: NDArray[np.intp],
    bundle_ix: NDArray[np.intp],
    cost: NDArray[np.float64],
) -> NDArray[np.intp]:
    """Min-cost matching on arcs (courier_ix[e], bundle_ix[e]) priced ``cost[e]``: the
    indices of the chosen arcs, by bundle. Arcs priced ``INFEASIBLE`` are never chosen.

    The objective is the dense solve's: first as many feasible pairs as possible, then the
    least total cost. ``min_weight_full_bipartite_matching`` needs a matching covering
    every bundle, so each bundle also gets its own dummy courier priced ``INFEASIBLE``
    (leaving it unserved costs what an infeasible pair costs the dense solve); each bundle's
    weights are shifted by its own constant to be >= 1 (every bundle is matched exactly
    once, so the shift does not move the optimum; the solver takes no zero weights). Arcs must be
    unique and sorted by (bundle, courier) (``candidates.candidate_arcs``).
    """
    ok = cost < INFEASIBLE
    arcs = np.flatnonzero(ok)
    if arcs.size == 0 or n_couriers == 0:
        return np.zeros(0, np.intp)
    real = cost[arcs]
    rows_of = bundle_ix[arcs]
    # Row reduction: every bundle row is matched exactly once (to a courier or its dummy),
    # so subtracting a per-row constant leaves the optimum where it is; it takes out the
    # per-bundle terms (SERVE_REWARD * size, waiting, detour) that otherwise make
    # LAPJVsp's column reduction favour the largest bundles and augment far.
    low = np.full(n_bundles, np.inf)
    np.minimum.at(low, rows_of, real)
    low[~np.isfinite(low)] = 0.0
    rows = np.concatenate([rows_of, np.arange(n_bundles)])
    cols = np.concatenate([courier_ix[arcs], n_couriers + np.arange(n_bundles)])
    weights = np.concatenate([real - low[rows_of] + 1.0, INFEASIBLE - low + 1.0])
    graph = csr_array((weights, (rows, cols)), shape=(n_bundles, n_couriers + n_bundles))
    bundles, couriers = min_weight_full_bipartite_matching(graph)
    served = couriers < n_couriers
    key = bundle_ix[arcs].astype(np.int64) * n_couriers + courier_ix[arcs]
    want = bundles[served].astype(np.int64) * n_couriers + couriers[served]
    picked: NDArray[np.intp] = arcs[np.searchsorted(key, want)].astype(np.intp)
    return picked
