"""Candidate arcs of a sparse round: which couriers a bundle may go to.

A dense round prices every courier for every bundle (n x m). At city scale almost all
of those pairs are absurd (a courier 20 km away), so a large round prices and solves
only candidate arcs:

1. **k nearest by arrival.** Couriers are split into bands by the time they can start
   (``max(now, free, shift start)``): band 0 holds exactly the couriers that start first
   (every courier idle now: they all start at ``now``, so distance orders them exactly
   by arrival), then bands of ``band_s``; busy
   couriers enter at their *future* free position in the band of their free time, so a
   courier about to free up next to a merchant is a candidate too. A ``cKDTree`` per
   band finds, for each merchant position, its nearest couriers; those of all bands are
   ranked by arrival (start + travel time, ties by courier index) and the best kept. A
   band whose earliest start is later than a position's k-th arrival among the earlier
   bands cannot hold one of the best, and is not queried for that position.
2. **Co-located bundles.** All bundles of one merchant share its position, so they
   would share the same k couriers and at most k of them could be served. A merchant
   with g bundles therefore keeps its ``k + g - 1`` best couriers, for each of its
   bundles.
3. **The guarantee.** A bundle whose kept arcs are all infeasible (every candidate's
   shift ends before the pickup) widens its search over all couriers, doubling until
   it finds a feasible courier or has looked at everyone, and gets an arc to every
   feasible courier found among the ``k + g - 1`` earliest by arrival. So a bundle that
   any courier of the round can serve always has at least one feasible arc: an order
   with no candidate in k still reaches the best courier in reach. And a bundle's first
   candidate arrives no later than its earliest idle courier (exact: band 0) and than
   the nearest courier of each busy band (within the band's start-time width).

4. **Cover.** Local arcs can leave bundles unserved that a dense solve serves with a
   courier from farther away (a hot district with more bundles than nearby couriers).
   A greedy matching of the feasible arcs (earliest arrival first; a maximum matching,
   Hopcroft-Karp, measured 2.7 s on a 20,000 round) names the bundles left over and the
   couriers left free; each leftover bundle gets arcs to its ``k`` nearest free couriers
   (feasible ones), the greedy extends its matching on those, and this repeats while it
   adds arcs (at most ``COVER_PASSES``). The
   sparse solve then serves as many bundles as the dense one in practice (the bench
   counts both).

Arcs are returned sorted by (bundle, courier), without duplicates. Pure: numpy and
scipy only, deterministic.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from lastmile.core.dispatch.costing import BundleArrays, CourierArrays
from lastmile.core.dispatch.model import TravelModel

# Width of a start-time band (seconds): busy couriers free within the same 10 minutes
# share a spatial index. Narrower bands rank by arrival more exactly but query more trees.
BAND_S = 10 * 60.0
# Rounds of step 4 (each: one Hopcroft-Karp matching and one spatial query).
COVER_PASSES = 6
GREEDY_ROUNDS = 30

IntArray = NDArray[np.intp]


def candidate_arcs(
    c: CourierArrays,
    b: BundleArrays,
    *,
    travel: TravelModel,
    pickup_service_s: float,
    k: int,
    band_s: float = BAND_S,
) -> tuple[IntArray, IntArray]:
    """(courier index, bundle index) of every candidate arc; see the module docstring.

    ``k >= 1``. No couriers or no bundles give no arcs.
    """
    n, m = len(c.start_s), len(b.ready_s)
    if n == 0 or m == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    spots, group, size = _spots(b.x_m, b.y_m)
    keep = np.minimum(n, k + size - 1)
    # Band 0: exactly the couriers that start first (idle now); then bands of ``band_s``.
    late = c.start_s - c.start_s.min()
    band = np.where(late > 0, 1 + np.floor(late / band_s), 0).astype(np.intp)
    bands = [np.flatnonzero(band == v) for v in np.unique(band)]
    trees = [cKDTree(np.stack([c.x_m[ix], c.y_m[ix]], axis=1)) for ix in bands]
    pos = np.stack([c.x_m, c.y_m], axis=1)
    # Each spot's candidates, as one flat array: spot s holds flat[ptr[s]:ptr[s] + cnt[s]].
    flat: list[IntArray] = []
    at_spot = np.zeros(len(spots), np.intp)
    cnt = np.zeros(len(spots), np.intp)
    done = 0
    for q in np.unique(keep):
        which = np.flatnonzero(keep == q)
        best = _nearest_by_arrival(spots[which], int(q), bands, trees, c, travel)
        real = best >= 0
        flat.append(best[real])
        cnt[which] = real.sum(axis=1)
        at_spot[which] = done + np.concatenate([[0], np.cumsum(cnt[which])[:-1]])
        done += int(cnt[which].sum())
    # Bundle j gets its spot's candidates, bundles in order (``np.repeat`` of runs).
    per_bundle = cnt[group]
    bundle_ix = np.repeat(np.arange(m, dtype=np.intp), per_bundle)
    run_start = np.cumsum(per_bundle) - per_bundle
    offset = np.arange(len(bundle_ix)) - np.repeat(run_start - at_spot[group], per_bundle)
    courier_ix = np.concatenate(flat)[offset].astype(np.intp)
    key = distinct(bundle_ix.astype(np.int64) * n + courier_ix)
    courier_ix, bundle_ix = (key % n).astype(np.intp), (key // n).astype(np.intp)
    ok, arrival = _feasible(c, b, courier_ix, bundle_ix, travel, pickup_service_s)
    served = np.zeros(m, dtype=bool)
    served[bundle_ix[ok]] = True
    lonely = np.flatnonzero(~served)
    if lonely.size:
        extra_c, extra_b = _widen(lonely, keep[group[lonely]], pos, c, b, travel,
                                  pickup_service_s)
        key = distinct(np.concatenate([key, extra_b.astype(np.int64) * n + extra_c]))
        courier_ix, bundle_ix = (key % n).astype(np.intp), (key // n).astype(np.intp)
        ok, arrival = _feasible(c, b, courier_ix, bundle_ix, travel, pickup_service_s)
    return _cover(courier_ix, bundle_ix, ok, arrival, c, b, travel, pickup_service_s, k)


def _spots(x_m: NDArray[np.float64], y_m: NDArray[np.float64],
           ) -> tuple[NDArray[np.float64], IntArray, IntArray]:
    """(distinct positions, position index of each bundle, bundles at each position): the
    groups of ``np.unique(np.stack([x_m, y_m], axis=1), axis=0, return_inverse=True,
    return_counts=True)`` (rows equal when both coordinates compare equal), with a sort
    on two keys instead of one on rows."""
    order = np.lexsort((y_m, x_m))
    xs, ys = x_m[order], y_m[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])
    group = np.empty(len(order), np.intp)
    group[order] = np.cumsum(new) - 1
    firsts = np.flatnonzero(new)
    size = np.diff(np.append(firsts, len(order))).astype(np.intp)
    return np.stack([xs[firsts], ys[firsts]], axis=1), group, size


def _cover(
    courier_ix: IntArray, bundle_ix: IntArray, ok: NDArray[np.bool_],
    arrival: NDArray[np.float64], c: CourierArrays, b: BundleArrays, travel: TravelModel,
    pickup_service_s: float, k: int,
) -> tuple[IntArray, IntArray]:
    """Step 4 of the module docstring (``ok``, ``arrival``: ``_feasible`` of the arcs). The
    greedy runs once on every arc, then only on the arcs each pass adds (leftover bundles
    to free couriers), extending its matching."""
    n, m = len(c.start_s), len(b.ready_s)
    mate = _greedy_matching(courier_ix[ok], bundle_ix[ok], arrival[ok], n, m)
    has_arc = np.zeros(m, dtype=bool)
    has_arc[bundle_ix[ok]] = True
    added_c: list[IntArray] = []
    added_b: list[IntArray] = []
    for _ in range(COVER_PASSES):
        left = np.flatnonzero(has_arc & (mate < 0))
        taken = np.zeros(n, dtype=bool)
        taken[mate[mate >= 0]] = True
        free = np.flatnonzero(~taken)
        if left.size == 0 or free.size == 0:
            break
        kk = min(len(free), k)
        _, local = cKDTree(np.stack([c.x_m[free], c.y_m[free]], axis=1)).query(
            np.stack([b.x_m[left], b.y_m[left]], axis=1), k=kk)
        extra_c = free[local.reshape(len(left), kk)].reshape(-1)
        extra_b = np.repeat(left, kk)
        fine, at = _feasible(c, b, extra_c, extra_b, travel, pickup_service_s)
        if not fine.any():
            break
        extra_c, extra_b = extra_c[fine], extra_b[fine]
        added_c.append(extra_c)
        added_b.append(extra_b)
        more = _greedy_matching(extra_c, extra_b, at[fine], n, m)
        mate = np.where(mate >= 0, mate, more)
    if not added_c:
        return courier_ix, bundle_ix
    key = distinct(np.concatenate([bundle_ix.astype(np.int64) * n + courier_ix,
                                   *(bb.astype(np.int64) * n + cc
                                     for cc, bb in zip(added_c, added_b, strict=True))]))
    return (key % n).astype(np.intp), (key // n).astype(np.intp)


def _greedy_matching(
    ci: IntArray, bi: IntArray, arrival: NDArray[np.float64], n: int, m: int,
) -> IntArray:
    """Courier of each bundle (-1: none) in the greedy matching that takes arcs by
    earliest arrival (ties by bundle, then courier): rounds of locally dominant arcs, at
    most ``GREEDY_ROUNDS`` (bundles still open then count as left over, which only adds
    arcs). A cheap stand-in for a maximum matching: it names the bundles that local arcs
    leave unserved."""
    # (bundle, courier) as one key bi * n + ci (ci < n): the same order as lexsort on
    # (ci, bi, arrival), one merge pass fewer.
    order = np.lexsort((bi.astype(np.int64) * n + ci, arrival))
    return _greedy_on_sorted(ci[order], bi[order], n, m)


def _greedy_on_sorted(ci: IntArray, bi: IntArray, n: int, m: int) -> IntArray:
    """``_greedy_matching``'s rounds on arcs already sorted best first."""
    mate = np.full(m, -1, np.intp)  # alive arcs, best first; compacted every round
    best_b = np.empty(m, np.intp)
    best_c = np.empty(n, np.intp)
    used_b = np.zeros(m, dtype=bool)  # matched so far (an arc of a matched end is dead)
    used_c = np.zeros(n, dtype=bool)
    for _ in range(GREEDY_ROUNDS):
        if ci.size == 0:
            break
        at = np.arange(len(ci))
        # The first arc of each bundle (courier) is its best: assigned in reverse, the
        # last write (numpy's rule for repeated indices) wins.
        best_b[bi[::-1]] = at[::-1]
        best_c[ci[::-1]] = at[::-1]
        # Dominant: first of its bundle and of its courier (the courier test only on the
        # bundles' firsts).
        dom = np.flatnonzero(best_b[bi] == at)
        dom = dom[best_c[ci[dom]] == dom]
        mate[bi[dom]] = ci[dom]
        used_b[bi[dom]] = True
        used_c[ci[dom]] = True
        keep = ~(used_b[bi] | used_c[ci])
        ci, bi = ci[keep], bi[keep]
    return mate


def _nearest_by_arrival(
    spots: NDArray[np.float64],
    q: int,
    bands: list[IntArray],
    trees: list[cKDTree],
    c: CourierArrays,
    travel: TravelModel,
) -> IntArray:
    """For each spot, its ``q`` couriers of earliest arrival among the ``q`` nearest of
    every band (rows padded with -1 when the round has fewer couriers).

    A band is queried only for the spots it could serve: a courier arrives no earlier
    than it starts, so a band whose earliest start is later than a spot's ``q``-th
    earliest arrival among the bands queried so far holds none of that spot's ``q``
    earliest (each row of a query is answered on its own, so the rows left out change
    nobody's answer)."""
    rows, n = len(spots), len(c.start_s)
    who_cols: list[IntArray] = []
    at_cols: list[NDArray[np.float64]] = []
    kth = np.full(rows, np.inf)  # q-th earliest arrival so far (inf: fewer than q so far)
    for ix, tree in zip(bands, trees, strict=True):
        need = np.flatnonzero(~(kth < c.start_s[ix].min()))
        if need.size == 0:
            continue
        kk = min(q, len(ix))
        dist, local = tree.query(spots[need], k=kk)
        dist, local = dist.reshape(len(need), kk), local.reshape(len(need), kk)
        who = np.full((rows, kk), n, np.intp)  # n: no courier (sorts after every courier)
        at = np.full((rows, kk), np.inf)
        who[need] = ix[local]
        at[need] = c.start_s[who[need]] + travel.seconds(dist)
        who_cols.append(who)
        at_cols.append(at)
        if sum(len(w[0]) for w in who_cols) >= q:
            kth = np.partition(np.concatenate(at_cols, axis=1), q - 1, axis=1)[:, q - 1]
    who_all = np.concatenate(who_cols, axis=1)
    at_all = np.concatenate(at_cols, axis=1)
    # Ranked when every band's columns together outnumber q, as without skipping (a row
    # that skipped a band holds at least q candidates).
    if sum(min(q, len(ix)) for ix in bands) > q:
        order = np.lexsort((who_all, at_all), axis=1)[:, :q]
        who_all = np.take_along_axis(who_all, order, axis=1)
    who_all = np.where(who_all == n, -1, who_all)
    if who_all.shape[1] < q:
        pad = np.full((len(spots), q - who_all.shape[1]), -1, np.intp)
        who_all = np.concatenate([who_all, pad], axis=1)
    return who_all


def _feasible(
    c: CourierArrays, b: BundleArrays, ci: IntArray, bi: IntArray, travel: TravelModel,
    pickup_service_s: float,
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """(pickup no later than the shift end, arrival) of arcs; the rule of ``costing``."""
    travel_s = travel.seconds(np.hypot(c.x_m[ci] - b.x_m[bi], c.y_m[ci] - b.y_m[bi]))
    arrival = c.start_s[ci] + travel_s
    pickup = np.maximum(b.ready_s[bi], arrival + pickup_service_s / 2)
    return pickup <= c.end_s[ci], arrival


def _widen(
    lonely: IntArray,
    want: IntArray,
    pos: NDArray[np.float64],
    c: CourierArrays,
    b: BundleArrays,
    travel: TravelModel,
    pickup_service_s: float,
) -> tuple[IntArray, IntArray]:
    """Arcs for bundles without a feasible candidate: nearest couriers of any band,
    doubling the search until a feasible one turns up or all were seen; of those found
    feasible, the ``want`` earliest by arrival."""
    n = len(pos)
    tree = cKDTree(pos)
    out_c: list[IntArray] = []
    out_b: list[IntArray] = []
    todo = lonely
    kk = min(n, 4 * int(want.max()))
    while todo.size:
        _, found = tree.query(np.stack([b.x_m[todo], b.y_m[todo]], axis=1), k=kk)
        found = found.reshape(len(todo), kk)
        bi = np.repeat(todo, kk)
        ci = found.reshape(-1)
        ok, arrival = _feasible(c, b, ci, bi, travel, pickup_service_s)
        ok2 = ok.reshape(len(todo), kk)
        done = ok2.any(axis=1) | (kk >= n)
        at = np.where(ok, arrival, np.inf).reshape(len(todo), kk)
        order = np.lexsort((found, at), axis=1)
        for row in np.flatnonzero(done):
            best = order[row][: int(want[np.searchsorted(lonely, todo[row])])]
            best = best[np.isfinite(at[row, best])]
            out_c.append(found[row, best])
            out_b.append(np.full(len(best), todo[row], np.intp))
        todo = todo[~done]
        kk = min(n, 2 * kk)
    if not out_c:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate(out_c).astype(np.intp), np.concatenate(out_b)


def distinct(keys: NDArray[np.int64] | IntArray) -> NDArray[np.int64]:
    """Sorted distinct keys (``np.unique`` hashes int64 keys in numpy 2.4 and measured
    ~150x slower than a sort on 75,000 arcs)."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if keys.size else keys
