"""Sparse rounds (candidates, sparse matching, region cells): the same plan as the dense
solve wherever the dense solve's choices are candidates, and the round invariants."""

from dataclasses import replace

import numpy as np
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from strategies import MIN, TRAVEL, snapshots, snapshots_with_waiting_couriers
from test_dispatch_tenants import _tenants, mixed_snapshots

from lastmile.core.dispatch import (
    CourierState,
    DispatchPolicy,
    Merchant,
    OpenOrder,
    Preposition,
    Snapshot,
    plan_round,
    round_costs,
)
from lastmile.core.dispatch.candidates import candidate_arcs
from lastmile.core.dispatch.costing import (
    INFEASIBLE,
    arc_costs,
    bundle_arrays,
    courier_arrays,
    pair_costs,
)
from lastmile.core.dispatch.matching import optimal_matching, sparse_matching
from lastmile.core.dispatch.partition import cells_of, partitioned_matching
from lastmile.core.dispatch.preposition import plan_prepositions

DENSE = DispatchPolicy(dense_up_to_pairs=10**12)
rush = st.one_of(snapshots(), snapshots_with_waiting_couriers())


def sparse(k: int, **kw: int) -> DispatchPolicy:
    return DispatchPolicy(dense_up_to_pairs=0, candidate_k=k, **kw)


def _total(cost: np.ndarray) -> float:
    return float(cost[cost < INFEASIBLE].sum())


@settings(max_examples=200, deadline=None)
@given(rush, st.integers(1, 4))
def test_sparse_plan_equals_dense_plan_where_every_dense_choice_is_a_candidate(snap, k):
    dense_costs, sparse_costs = round_costs(snap, DENSE), round_costs(snap, sparse(k))
    assert dense_costs.bundles == sparse_costs.bundles
    assert dense_costs.couriers == sparse_costs.couriers
    if dense_costs.times is None:
        assert sparse_costs.arcs is None
        assert plan_round(snap, sparse(k)) == plan_round(snap, DENSE)
        return
    assert sparse_costs.arcs is not None
    times, arcs = dense_costs.times, sparse_costs.arcs
    ci, bi = arcs.courier_ix, arcs.bundle_ix
    # One formula: an arc costs exactly its matrix entry.
    assert np.array_equal(arcs.times.cost, times.cost[ci, bi])
    assert np.array_equal(arcs.times.pickup_s, times.pickup_s[ci, bi])
    chosen = [(i, j) for i, j in optimal_matching(times.cost)]
    candidates = set(zip(ci.tolist(), bi.tolist(), strict=True))
    assume(all((i, j) in candidates for i, j in chosen))
    picked = sparse_matching(len(sparse_costs.couriers), len(sparse_costs.bundles),
                             ci, bi, arcs.times.cost)
    dense_pairs = {(i, j) for i, j in chosen}
    sparse_pairs = set(zip(ci[picked].tolist(), bi[picked].tolist(), strict=True))
    assert len(sparse_pairs) == len(dense_pairs)
    dense_total = float(sum(times.cost[i, j] for i, j in dense_pairs))
    assert abs(_total(arcs.times.cost[picked]) - dense_total) <= 1e-6 * max(1.0, abs(dense_total))
    event(f"same pairs as dense: {sparse_pairs == dense_pairs}; pairs: {min(3, len(chosen))}")
    if sparse_pairs == dense_pairs:  # a cost-equal optimum may pick other pairs
        assert plan_round(snap, sparse(k)) == plan_round(snap, DENSE)


@settings(max_examples=150, deadline=None)
@given(rush, st.integers(1, 3), st.integers(1, 4))
def test_a_sparse_round_never_gives_a_courier_or_an_order_twice_nor_picks_up_late(
    snap, k, cell_bundles
):
    policy = sparse(k, cell_bundles=cell_bundles)
    plan = plan_round(snap, policy)
    ids = [a.courier_id for a in plan.assignments] + [p.courier_id for p in plan.prepositions]
    assert len(ids) == len(set(ids))
    orders = [i for a in plan.assignments for i in a.order_ids]
    assert len(orders) == len(set(orders))
    couriers = {c.courier_id: c for c in snap.couriers}
    ready = {o.order_id: o.ready_s for o in snap.orders}
    for a in plan.assignments:
        c = couriers[a.courier_id]
        assert a.pickup_s <= c.shift_end_s
        assert a.pickup_s >= max(ready[i] for i in a.order_ids)
        assert c.free_s <= snap.now_s and c.shift_start_s <= snap.now_s


@settings(max_examples=150, deadline=None)
@given(mixed_snapshots(), st.integers(1, 3))
def test_a_sparse_round_never_pairs_parties_of_two_tenants(snap, k):
    plan = plan_round(snap, sparse(k, cell_bundles=2))
    couriers, orders = _tenants(snap)
    for a in (*plan.assignments, *plan.reassignments):
        assert {orders[i] for i in a.order_ids} == {couriers[a.courier_id]}


def test_a_courier_about_to_free_up_next_door_beats_an_idle_one_farther_away():
    snap = _base()
    soon = replace(snap.couriers[0], courier_id="soon", x_m=0.0, free_s=2 * MIN)
    idle = replace(snap.couriers[0], courier_id="idle", x_m=3200.0, free_s=0.0)
    snap = replace(snap, couriers=(idle, soon))
    costs = round_costs(snap, sparse(1))
    assert costs.arcs is not None
    first = costs.arcs.courier_ix[np.argmin(costs.arcs.times.arrival_s)]
    assert costs.couriers[first].courier_id == "soon"


def _wide_snapshot(seed: int, n: int) -> Snapshot:
    """n orders at n/4 merchants and n couriers in a 6 km square (a small city)."""
    rng = np.random.default_rng(seed)
    snap = _base()
    spots = rng.uniform(0, 6000, size=(max(1, n // 4), 2))
    orders, couriers = [], []
    for i in range(n):
        m = int(rng.integers(len(spots)))
        x, y = spots[m]
        orders.append(replace(snap.orders[0], order_id=f"o{i}", merchant_id=f"r{m}",
                              pickup_x_m=float(x), pickup_y_m=float(y),
                              dropoff_x_m=float(x + rng.normal(0, 1500)),
                              dropoff_y_m=float(y + rng.normal(0, 1500)),
                              ready_s=float(rng.uniform(-5, 25)) * MIN))
        cx, cy = rng.uniform(0, 6000, size=2)
        couriers.append(replace(snap.couriers[0], courier_id=f"c{i}", x_m=float(cx),
                                y_m=float(cy), free_s=float(rng.choice([0.0, 600.0, 1500.0])),
                                shift_end_s=float(rng.choice([900.0, 4 * 3600.0]))))
    merchants = tuple(Merchant(merchant_id=f"r{m}", x_m=float(x), y_m=float(y),
                               demand_weight=float(m % 3)) for m, (x, y) in enumerate(spots))
    return replace(snap, orders=tuple(orders), couriers=tuple(couriers), merchants=merchants)


def _base() -> Snapshot:
    """One order ready in 10 minutes at the origin, one idle courier there."""
    order = OpenOrder(order_id="o1", merchant_id="r1", placed_s=-20 * MIN, ready_s=10 * MIN,
                      pickup_x_m=0.0, pickup_y_m=0.0, dropoff_x_m=1000.0, dropoff_y_m=0.0)
    courier = CourierState(courier_id="c1", x_m=0.0, y_m=0.0, free_s=0.0,
                           shift_start_s=-3600.0, shift_end_s=4 * 3600.0)
    return Snapshot(now_s=0.0, orders=(order,), couriers=(courier,), travel=TRAVEL,
                    pickup_service_s=4 * MIN, dropoff_service_s=4 * MIN)


def test_arc_costs_are_the_matrix_entries_bit_for_bit():
    snap = _wide_snapshot(1, 60)
    costs = round_costs(snap, DENSE)
    assert costs.times is not None
    c, b = courier_arrays(costs.couriers, snap.now_s), bundle_arrays(costs.bundles, snap.now_s)
    rng = np.random.default_rng(0)
    ci = rng.integers(len(costs.couriers), size=500)
    bi = rng.integers(len(costs.bundles), size=500)
    kw = {"travel": snap.travel, "pickup_service_s": snap.pickup_service_s,
          "idle_weight": 0.1, "late_weight": 1.5, "travel_weight": 0.5}
    dense = pair_costs(costs.couriers, costs.bundles, now_s=snap.now_s, **kw)
    arcs = arc_costs(c, b, ci, bi, **kw)
    for name in ("arrival_s", "pickup_s", "travel_s", "cost", "feasible"):
        assert np.array_equal(getattr(arcs, name), getattr(dense, name)[ci, bi]), name


def test_sparse_matching_on_all_pairs_is_as_good_as_the_dense_solve():
    rng = np.random.default_rng(3)
    for n, m in ((5, 8), (8, 5), (30, 30), (12, 40)):
        cost = rng.uniform(-1e6, -9e5, size=(n, m)).round(1)
        cost[rng.uniform(size=(n, m)) < 0.3] = INFEASIBLE
        ci, bi = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
        key = np.lexsort((ci.ravel(), bi.ravel()))
        ci, bi, flat = ci.ravel()[key], bi.ravel()[key], cost.ravel()[key]
        picked = sparse_matching(n, m, ci, bi, flat)
        rows, cols = linear_sum_assignment(cost)
        dense = [(r, c) for r, c in zip(rows, cols, strict=True) if cost[r, c] < INFEASIBLE]
        assert len(picked) == len(dense)
        assert abs(flat[picked].sum() - sum(cost[r, c] for r, c in dense)) < 1e-3
        assert len(set(ci[picked])) == len(picked) == len(set(bi[picked]))


def test_every_bundle_a_courier_can_serve_gets_a_feasible_candidate():
    snap = _wide_snapshot(7, 200)
    costs = round_costs(snap, DENSE)
    assert costs.times is not None
    c, b = courier_arrays(costs.couriers, snap.now_s), bundle_arrays(costs.bundles, snap.now_s)
    ci, bi = candidate_arcs(c, b, travel=snap.travel, pickup_service_s=snap.pickup_service_s,
                            k=1)
    feasible_somewhere = costs.times.feasible.any(axis=0)
    has = np.zeros(len(costs.bundles), dtype=bool)
    has[bi[costs.times.feasible[ci, bi]]] = True
    assert np.array_equal(has, feasible_somewhere)
    # No courier idle now reaches a bundle earlier than its best candidate.
    idle = np.flatnonzero(c.start_s == snap.now_s)
    arrival = costs.times.arrival_s
    for j in range(len(costs.bundles)):
        assert arrival[ci[bi == j], j].min() <= arrival[idle, j].min()


def test_candidates_reach_couriers_about_to_free_up_near_a_merchant():
    snap = _base()
    near_busy = replace(snap.couriers[0], courier_id="busy", x_m=10.0, free_s=5 * MIN)
    far_idle = [replace(snap.couriers[0], courier_id=f"idle{i}", x_m=3000.0 + i, free_s=0.0)
                for i in range(5)]
    snap = replace(snap, couriers=(near_busy, *far_idle))
    costs = round_costs(snap, sparse(2))
    assert costs.arcs is not None
    ids = {costs.couriers[i].courier_id for i in costs.arcs.courier_ix}
    assert "busy" in ids


def test_region_cells_never_give_a_courier_twice_and_serve_about_what_one_solve_serves():
    snap = _wide_snapshot(11, 400)
    costs = round_costs(snap, sparse(6))
    assert costs.arcs is not None
    a = costs.arcs
    n, m = len(costs.couriers), len(costs.bundles)
    whole = sparse_matching(n, m, a.courier_ix, a.bundle_ix, a.times.cost)
    x = np.array([b.x_m for b in costs.bundles])
    y = np.array([b.y_m for b in costs.bundles])
    cell = cells_of(x, y, 40)
    assert cell.max() >= 3
    parts = partitioned_matching(n, m, a.courier_ix, a.bundle_ix, a.times.cost, cell)
    assert len(set(a.courier_ix[parts])) == len(parts) == len(set(a.bundle_ix[parts]))
    assert (a.times.cost[parts] < INFEASIBLE).all()
    assert len(parts) >= 0.95 * len(whole)


def test_prepositioning_takes_pairs_exactly_as_the_sorted_greedy():
    for seed in range(20):
        snap = _wide_snapshot(seed, 40)
        policy = DispatchPolicy(preposition_radius_s=float(5 + seed) * MIN)
        free = [c for c in snap.couriers if c.free_s <= snap.now_s]
        got = plan_prepositions(snap, policy, free)
        assert got == _sorted_greedy(snap, policy, free)


def _sorted_greedy(snap, policy, free):
    """The rule as first written: every pair in reach, best score first, one each."""
    merchants = [mm for mm in snap.merchants if mm.demand_weight > 0]
    out, used_c, used_m = [], set(), set()
    pairs = []
    for c in free:
        for mm in merchants:
            t = snap.travel.seconds_between(c.x_m, c.y_m, mm.x_m, mm.y_m)
            if t <= policy.preposition_radius_s:
                pairs.append((-mm.demand_weight / (1.0 + t / 60.0), c.courier_id,
                              mm.merchant_id, c, t))
    pairs.sort(key=lambda p: p[:3])
    for _, cid, mid, c, t in pairs:
        if cid in used_c or mid in used_m or c.shift_end_s <= snap.now_s + t:
            continue
        used_c.add(cid)
        used_m.add(mid)
        out.append((cid, mid, snap.now_s + t))
    return tuple(Preposition(courier_id=cid, merchant_id=mid, arrival_s=float(at))
                 for cid, mid, at in out)
