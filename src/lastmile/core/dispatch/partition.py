"""Region partitions: solve a huge sparse round as independent cells.

The sparse solve (LAPJVsp) grows faster than its arcs: on the bench's rounds it took
0.2 s for 2,600 bundles and 5 s for 13,300 (75,000 and 380,000 arcs, a shared and
loaded machine). A round with more than ``cell_bundles`` bundles is therefore cut into
cells:

- the plane is cut into a square grid over the bundles' merchants, ``ceil(sqrt(m /
  cell_bundles))`` cells a side, so a cell holds about ``cell_bundles`` bundles;
- cells are solved one after the other, each on its own bundles' candidate arcs to
  couriers no earlier cell took, so a bundle near a border may take a courier across
  it (the overlap is exactly its candidate list) and no courier is given twice;
- the bundles the cells left unserved are solved once more together, on their arcs to
  couriers still free.

The result is the cells' optima stitched at the borders, not the global optimum: a
chain of swaps across a border is not seen. ``bench/dispatch_scaling.py`` reports the
solve with and without cells.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from lastmile.core.dispatch.matching import sparse_matching

IntArray = NDArray[np.intp]


def cells_of(x_m: NDArray[np.float64], y_m: NDArray[np.float64], cell_bundles: int) -> IntArray:
    """Cell index of each bundle on a square grid of about ``cell_bundles`` per cell
    (one cell when there are at most that many)."""
    m = len(x_m)
    side = max(1, math.ceil(math.sqrt(m / max(1, cell_bundles))))
    if side == 1:
        return np.zeros(m, np.intp)

    def axis(v: NDArray[np.float64]) -> IntArray:
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo if hi > lo else 1.0
        return np.minimum(side - 1, ((v - lo) / span * side).astype(np.intp))

    return axis(x_m) * side + axis(y_m)


def partitioned_matching(
    n_couriers: int,
    n_bundles: int,
    courier_ix: IntArray,
    bundle_ix: IntArray,
    cost: NDArray[np.float64],
    cell: IntArray,
) -> IntArray:
    """Chosen arc indices (as ``sparse_matching``), each cell of ``cell`` (one entry per
    bundle) solved on its own, then the border conflicts resolved (module docstring)."""
    arc_cell = cell[bundle_ix]
    # A stable sort: each cell's arcs keep their (bundle, courier) order. 16-bit keys sort
    # by radix (numpy's stable sort of small integers), the same order.
    small = -(2**15) <= int(cell.min()) and int(cell.max()) < 2**15
    order = np.argsort(arc_cell.astype(np.int16) if small else arc_cell, kind="stable")
    bounds = np.searchsorted(arc_cell[order], np.arange(int(cell.max()) + 2))
    taken = np.zeros(n_couriers, dtype=bool)
    served = np.zeros(n_bundles, dtype=bool)
    chosen: list[IntArray] = []

    def solve(arcs: IntArray) -> None:
        arcs = arcs[~taken[courier_ix[arcs]]]
        if arcs.size:
            got = arcs[_solve(courier_ix, bundle_ix, cost, arcs, n_couriers, n_bundles)]
            taken[courier_ix[got]] = True
            served[bundle_ix[got]] = True
            chosen.append(got)

    for k in range(len(bounds) - 1):
        solve(order[bounds[k]:bounds[k + 1]])  # ascending (a stable sort's run)
    # Bundles a cell left unserved (their couriers went to an earlier cell, or their cell
    # was short), together, on the arcs to couriers still free.
    solve(np.flatnonzero(~served[bundle_ix]))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.intp)


def _solve(
    courier_ix: IntArray, bundle_ix: IntArray, cost: NDArray[np.float64], arcs: IntArray,
    n_couriers: int, n_bundles: int,
) -> IntArray:
    """``sparse_matching`` on a subset of arcs (ascending), bundles and couriers renumbered
    densely; positions within ``arcs`` of the chosen ones."""
    ci, bi = courier_ix[arcs], bundle_ix[arcs]
    (nc, ci), (nb, bi) = _dense(ci, n_couriers), _dense(bi, n_bundles)
    # (bundle, courier) order is kept: both renumber monotonically.
    return sparse_matching(nc, nb, ci, bi, cost[arcs])


def _dense(ix: IntArray, n: int) -> tuple[int, IntArray]:
    """(how many distinct values, each value's rank among them): ``np.searchsorted(
    distinct(ix), ix)`` for values in ``range(n)``, by marking them instead of sorting."""
    seen = np.zeros(n, dtype=bool)
    seen[ix] = True
    rank = np.cumsum(seen) - 1
    return int(rank[-1]) + 1 if n else 0, rank[ix].astype(np.intp)
