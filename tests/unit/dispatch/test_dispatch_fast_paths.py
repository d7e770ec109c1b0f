"""Fast paths of the round against the numpy calls they replace (bit-equal)."""

from __future__ import annotations

import math
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from strategies import snapshots

from lastmile.core.dispatch.bundling import bundle_set, generate_bundles
from lastmile.core.dispatch.candidates import (
    BAND_S,
    _greedy_matching,
    _greedy_on_sorted,
    _nearest_by_arrival,
    _spots,
    distinct,
)
from lastmile.core.dispatch.costing import BundleArrays, CourierArrays, bundle_arrays
from lastmile.core.dispatch.horizon import commit_mask, should_commit
from lastmile.core.dispatch.model import (
    Bundle,
    CourierState,
    Merchant,
    OpenOrder,
    TravelModel,
)
from lastmile.core.dispatch.partition import _dense
from lastmile.core.dispatch.preposition import _greedy
from lastmile.core.dispatch.ready_order import by_ready_time
from lastmile.core.dispatch.sequencing import new_bundle

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import dispatch_scaling  # noqa: E402


@given(st.lists(st.tuples(st.integers(0, 7), st.booleans()), max_size=60))
def test_reverse_write_is_minimum_at_for_ascending_values(rows: list[tuple[int, bool]]) -> None:
    # preposition._greedy: ``best[idx[::-1]] = alive[::-1]`` for ascending ``alive``.
    idx = np.array([i for i, _ in rows], np.intp)
    alive = np.flatnonzero(np.array([k for _, k in rows] or [False], bool))[: len(idx)]
    idx = idx[: len(alive)]
    expect = np.full(8, 99, np.intp)
    np.minimum.at(expect, idx, alive)
    got = np.full(8, 99, np.intp)
    got[idx[::-1]] = alive[::-1]
    assert np.array_equal(got, expect)


def _sorted_greedy(ci: np.ndarray, mj: np.ndarray, score: np.ndarray,
                   cids: list[str], mids: list[str]) -> list[int]:
    order = sorted(range(len(ci)), key=lambda e: (-score[e], cids[ci[e]], mids[mj[e]]))
    used_c: set[int] = set()
    used_m: set[int] = set()
    out = []
    for e in order:
        if ci[e] not in used_c and mj[e] not in used_m:
            used_c.add(int(ci[e]))
            used_m.add(int(mj[e]))
            out.append(e)
    return out


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 4)),
                max_size=40, unique_by=lambda t: (t[0], t[1])))
def test_preposition_greedy_equals_sorted_greedy(pairs: list[tuple[int, int, int]]) -> None:
    ci = np.array([p[0] for p in pairs], np.intp)
    mj = np.array([p[1] for p in pairs], np.intp)
    score = np.array([float(p[2]) for p in pairs], np.float64)
    movers = [CourierState(courier_id=f"c{5 - i}", x_m=0.0, y_m=0.0, free_s=0.0,
                           shift_start_s=0.0, shift_end_s=1.0)
              for i in range(6)]
    merchants = [Merchant(merchant_id=f"m{(5 * j) % 6}", x_m=0.0, y_m=0.0) for j in range(6)]
    got = _greedy(ci, mj, score, movers, merchants).tolist()
    assert got == _sorted_greedy(ci, mj, score, [c.courier_id for c in movers],
                                 [m.merchant_id for m in merchants])


_floats = st.floats(allow_nan=False, width=64)


@given(st.text(max_size=3), st.lists(st.text(max_size=3), min_size=1, max_size=4),
       st.lists(_floats, min_size=10, max_size=10),
       st.lists(_floats, min_size=1, max_size=4))
def test_new_bundle_equals_the_dataclass_init(merchant: str, ids: list[str], v: list[float],
                                             placed: list[float]) -> None:
    args = (merchant, tuple(ids), v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
            tuple(placed), (v[8], v[9]))
    fast = new_bundle(*args)
    slow = Bundle(merchant_id=args[0], order_ids=args[1], ready_s=args[2], x_m=args[3],
                  y_m=args[4], route_s=args[5], detour_s=args[6], last_leg_end_s=args[7],
                  end_x_m=args[8], end_y_m=args[9], placed_s=args[10], readies_s=args[11])
    assert fast == slow
    assert hash(fast) == hash(slow)
    for f in fields(Bundle):  # every field set, bit for bit (a new field must be added)
        assert repr(getattr(fast, f.name)) == repr(getattr(slow, f.name))


def _greedy_matching_three_keys(ci: np.ndarray, bi: np.ndarray, arrival: np.ndarray, n: int,
                                m: int) -> np.ndarray:
    """``candidates._greedy_matching`` as it was: ``np.lexsort((ci, bi, arrival))``, then
    the same rounds."""
    order = np.lexsort((ci, bi, arrival))
    return _greedy_on_sorted(ci[order], bi[order], n, m)


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 3)),
                max_size=50))
def test_greedy_matching_one_pair_key_equals_three_keys(arcs: list[tuple[int, int, int]]) -> None:
    ci = np.array([a[0] for a in arcs], np.intp)
    bi = np.array([a[1] for a in arcs], np.intp)
    arrival = np.array([float(a[2]) for a in arcs], np.float64)
    assert np.array_equal(_greedy_matching(ci, bi, arrival, 7, 7),
                          _greedy_matching_three_keys(ci, bi, arrival, 7, 7))


def _bit_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


@settings(max_examples=60, deadline=None)
@given(snap=snapshots(), cap=st.integers(1, 6), extra=st.sampled_from([0.0, 900.0, 1e9]),
       now=st.sampled_from([0.0, 600.0, -1e9]), from_now=st.booleans())
def test_bundle_set_arrays_equal_bundle_arrays_of_its_bundles(snap, cap, extra, now,
                                                              from_now) -> None:
    # from_now: the bundling rule sees past ready times as now (policy.bundle_from_now);
    # the bundles and their arrays keep the orders' own ready times all the same.
    kw = {"travel": snap.travel, "pickup_service_s": snap.pickup_service_s,
          "dropoff_service_s": snap.dropoff_service_s, "size_cap": cap,
          "max_ready_gap_s": 600.0, "max_extra_delay_s": extra,
          "now_s": snap.now_s if from_now else None}
    lazy = bundle_set(snap.orders, **kw)
    got = lazy.arrays(snap.now_s + now)
    built = generate_bundles(snap.orders, **kw)
    want = bundle_arrays(built, snap.now_s + now)
    for f in fields(BundleArrays):
        assert _bit_equal(getattr(got, f.name), getattr(want, f.name)), f.name
    # Built on demand, in any order, each equal to generate_bundles'.
    back = list(range(len(built)))[::-1]
    assert lazy.take(back) == [built[j] for j in back]
    assert bundle_set(snap.orders, **kw).orders_of(back) == [
        (built[j].merchant_id, built[j].order_ids) for j in back]
    assert lazy == built and tuple(lazy) == built and len(lazy) == len(built)
    if built:
        assert lazy[-1] == built[-1] and lazy[:2] == built[:2]


def test_bundle_set_arrays_of_a_city_round_equal_bundle_arrays() -> None:
    snap = dispatch_scaling.synthetic(2000, seed=5)
    kw = {"travel": snap.travel, "pickup_service_s": 240.0, "dropoff_service_s": 240.0,
          "max_ready_gap_s": 600.0, "max_extra_delay_s": 900.0}
    for cap in (2, 4, 5):
        lazy = bundle_set(snap.orders, size_cap=cap, **kw)
        got, want = lazy.arrays(30.0), bundle_arrays(tuple(lazy), 30.0)
        assert sum(len(b.order_ids) > 1 for b in lazy) > 100
        assert bundle_set(snap.orders, size_cap=cap, **kw).orders_of(range(len(lazy))) == [
            (b.merchant_id, b.order_ids) for b in lazy]
        for f in fields(BundleArrays):
            assert _bit_equal(getattr(got, f.name), getattr(want, f.name)), f.name


_times = st.one_of(st.sampled_from([0.0, -0.0, 120.0, 600.0, 599.9999999999999]),
                   st.floats(-1e6, 1e6, allow_nan=False))


@given(st.lists(st.tuples(_times, _times, _times, _times), max_size=30),
       st.sampled_from([0.0, 600.0]), st.sampled_from([240.0, 90.0]),
       st.sampled_from([0.0, 120.0]))
def test_commit_mask_equals_should_commit_pair_by_pair(pairs, now, service, slack) -> None:
    free, start, ready, travel = (np.array(v, np.float64).reshape(-1)
                                  for v in zip(*pairs, strict=True)) if pairs else [np.zeros(0)] * 4
    got = commit_mask(now_s=now, courier_free_s=free, courier_shift_start_s=start,
                      ready_s=ready, travel_s=travel, pickup_service_s=service,
                      commit_slack_s=slack)
    assert got.tolist() == [
        should_commit(now_s=now, courier_free_s=f, courier_shift_start_s=s, ready_s=r,
                      travel_s=t, pickup_service_s=service, commit_slack_s=slack)
        for f, s, r, t in pairs]


def _nearest_by_arrival_every_band(spots, q, bands, trees, c, travel):
    """``candidates._nearest_by_arrival`` as it was: every band queried for every spot."""
    cand, arrive = [], []
    for ix, tree in zip(bands, trees, strict=True):
        kk = min(q, len(ix))
        dist, local = tree.query(spots, k=kk)
        dist, local = dist.reshape(len(spots), kk), local.reshape(len(spots), kk)
        cand.append(ix[local])
        arrive.append(c.start_s[ix[local]] + travel.seconds(dist))
    who_all, at_all = np.concatenate(cand, axis=1), np.concatenate(arrive, axis=1)
    if who_all.shape[1] > q:
        order = np.lexsort((who_all, at_all), axis=1)[:, :q]
        who_all = np.take_along_axis(who_all, order, axis=1)
    if who_all.shape[1] < q:
        who_all = np.concatenate([who_all, np.full((len(spots), q - who_all.shape[1]), -1)],
                                 axis=1)
    return who_all


_grid = st.integers(0, 6).map(lambda v: v * 160.0)  # half a travel step: ties in distance


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_grid, _grid, st.sampled_from([0.0, 0.0, 30.0, 700.0, 1300.0])),
                min_size=1, max_size=40),
       st.lists(st.tuples(_grid, _grid), min_size=1, max_size=8), st.integers(1, 7))
def test_nearest_by_arrival_skipping_late_bands_equals_querying_every_band(couriers, spots, q):
    x, y, start = (np.array(v, np.float64) for v in zip(*couriers, strict=True))
    c = CourierArrays(x_m=x, y_m=y, start_s=start, end_s=np.full(len(x), 1e9))
    late = start - start.min()
    band = np.where(late > 0, 1 + np.floor(late / BAND_S), 0).astype(np.intp)
    bands = [np.flatnonzero(band == v) for v in np.unique(band)]
    trees = [cKDTree(np.stack([x[ix], y[ix]], axis=1)) for ix in bands]
    at = np.array(spots, np.float64)
    travel = TravelModel(metres_per_step=320.0, step_s=60.0)
    assert np.array_equal(_nearest_by_arrival(at, q, bands, trees, c, travel),
                          _nearest_by_arrival_every_band(at, q, bands, trees, c, travel))


@given(st.lists(st.tuples(st.sampled_from([0.0, -0.0, 1.5, 2.0]),
                          st.sampled_from([0.0, -0.0, 1.5, 7.0])), min_size=1, max_size=30))
def test_spots_group_bundles_as_unique_rows(points):
    x, y = (np.array(v, np.float64) for v in zip(*points, strict=True))
    spots, group, size = _spots(x, y)
    want, want_group, want_size = np.unique(np.stack([x, y], axis=1), axis=0,
                                            return_inverse=True, return_counts=True)
    assert np.array_equal(spots, want)  # -0.0 == 0.0: either may stand for its group
    assert np.array_equal(group, want_group.reshape(-1))
    assert np.array_equal(size, want_size)


@given(st.lists(st.integers(0, 9), min_size=1, max_size=40))
def test_dense_renumbering_equals_searchsorted_on_distinct_values(values):
    ix = np.array(values, np.intp)
    count, rank = _dense(ix, 10)
    assert count == len(distinct(ix))
    assert np.array_equal(rank, np.searchsorted(distinct(ix), ix))


_ready = st.one_of(st.sampled_from([0.0, -0.0, 60.0, 60.0, float("nan"), float("inf")]),
                   st.floats(-1e4, 1e4, allow_nan=False))


@given(st.lists(st.tuples(st.sampled_from(["r1", "r2", "r10", ""]), _ready,
                          st.sampled_from(["o1", "o2", "o10", "a"])), max_size=30),
       st.booleans())
def test_by_ready_time_equals_sorting_the_key_tuples(rows, by_merchant):
    orders = [OpenOrder(order_id=oid, merchant_id=m, placed_s=-math.inf, ready_s=r,
                        pickup_x_m=float(i), pickup_y_m=0.0, dropoff_x_m=0.0, dropoff_y_m=0.0)
              for i, (m, r, oid) in enumerate(rows)]
    key = ((lambda o: (o.merchant_id, o.ready_s, o.order_id)) if by_merchant
           else (lambda o: (o.ready_s, o.order_id)))
    # Identity, not equality: equal keys must keep their input order (pickup_x_m tells).
    assert [id(o) for o in by_ready_time(orders, by_merchant=by_merchant)] == [
        id(o) for o in sorted(orders, key=key)]
