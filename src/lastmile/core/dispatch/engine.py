"""One dispatch round: snapshot + policy -> plan.

Steps of the optimised policy (each a pure function with its own tests):

1. assignment updates (``updates``): open orders join bundles whose courier
   already waits at their merchant;
2. rolling-horizon filter: orders ready within ``horizon_s``; couriers on shift
   and free within ``horizon_s`` (busy couriers enter the matching at their
   future free time and place, so the matching can prefer to wait for them);
3. bundle generation (``bundling``, ready times read from ``now`` on with
   ``bundle_from_now``) with a size cap from orders per courier; with
   ``allow_stacking``, pairs of single orders of two nearby merchants become stacked
   bundles (``stacking``);
4. costs (``costing``) and optimal matching (``matching``); when bundles
   outnumber couriers, courier driving time gets an extra weight
   (``shortage_travel_weight``) because empty driving then limits throughput, and so
   does all the courier time a pair uses (``shortage_busy_weight``). A round
   of at most ``dense_up_to_pairs`` couriers x bundles prices every pair (a matrix,
   scipy ``linear_sum_assignment``); a larger one prices only candidate arcs
   (``candidates``: each bundle's nearest couriers by arrival) and solves them sparse
   (``matching.sparse_matching``), with the same cost formula and objective;
5. commit only the pairs that cannot wait (``horizon``); the rest stay open;
6. prepositioning (``preposition``) of idle couriers left without work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from lastmile.core.dispatch.acceptance import price_acceptance
from lastmile.core.dispatch.bundling import Bundles, bundle_set, bundle_size_cap
from lastmile.core.dispatch.candidates import candidate_arcs
from lastmile.core.dispatch.costing import (
    INFEASIBLE,
    BundleArrays,
    PairTimes,
    arc_costs,
    bundle_arrays,
    courier_arrays,
    pair_costs,
)
from lastmile.core.dispatch.greedy import greedy_plan
from lastmile.core.dispatch.horizon import commit_mask
from lastmile.core.dispatch.matching import optimal_matching, sparse_matching
from lastmile.core.dispatch.model import (
    Assignment,
    Bundle,
    CourierState,
    DispatchPlan,
    DispatchPolicy,
    OpenOrder,
    PolicyKind,
    Preposition,
    Reassignment,
    Snapshot,
)
from lastmile.core.dispatch.partition import cells_of, partitioned_matching
from lastmile.core.dispatch.preposition import plan_prepositions
from lastmile.core.dispatch.stacking import stack_bundles  # issue 11 item 3 (stacking)
from lastmile.core.dispatch.updates import plan_updates
from lastmile.core.dispatch.worlds import check_plan, merge_plans, split_by_tenant


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundArcs:
    """The candidate arcs of a sparse round: arc e pairs ``couriers[courier_ix[e]]`` with
    ``bundles[bundle_ix[e]]`` at ``times.*[e]`` (sorted by bundle, then courier)."""

    courier_ix: NDArray[np.intp]
    bundle_ix: NDArray[np.intp]
    times: PairTimes


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundCosts:
    """Steps 1-4 of a round: what the matching sees, and the cost it minimises.

    A dense round fills ``times`` (couriers x bundles matrices); a sparse one (more
    pairs than ``policy.dense_up_to_pairs``) fills ``arcs`` and ``bundle_arrays`` (the
    bundles' cost columns) instead. Both are ``None`` when there is nothing to match (no
    bundle or no courier). ``bundles`` builds a ``Bundle`` only when one is read
    (``bundling.Bundles``; a tuple when stacking rebuilt them).
    ``bench/dispatch_scaling.py`` times the bare solve on exactly these costs.
    """

    updates: tuple[Reassignment, ...]
    couriers: tuple[CourierState, ...]
    bundles: Sequence[Bundle]
    times: PairTimes | None
    arcs: RoundArcs | None = None
    bundle_arrays: BundleArrays | None = None


def round_costs(snapshot: Snapshot, policy: DispatchPolicy) -> RoundCosts:
    """Assignment updates, the rolling-horizon filter, bundling and the cost matrix of
    one optimised round (``plan_round`` matches and commits on this very matrix).

    The courier driving weight is ``travel_weight``, plus ``shortage_travel_weight`` in
    rounds with more bundles than couriers.
    """
    updates, absorbed = (
        plan_updates(snapshot, policy) if policy.allow_updates else ((), frozenset())
    )
    orders, couriers = _in_horizon(snapshot, policy, absorbed, {u.courier_id for u in updates})
    cap = bundle_size_cap(
        n_orders=len(orders), n_couriers=len(couriers), max_bundle_size=policy.max_bundle_size
    )
    bundles: Sequence[Bundle] = bundle_set(
        orders,
        travel=snapshot.travel,
        pickup_service_s=snapshot.pickup_service_s,
        dropoff_service_s=snapshot.dropoff_service_s,
        size_cap=cap,
        max_ready_gap_s=policy.max_ready_gap_s,
        max_extra_delay_s=policy.max_extra_delay_s,
        now_s=snapshot.now_s if policy.bundle_from_now else None,
    )
    # -- stacking (issue 11 item 3): pairs of single-order bundles of two nearby merchants
    # become one stacked bundle; off unless the policy allows it (MDRP never does).
    if policy.allow_stacking:
        bundles = stack_bundles(
            bundles, orders, travel=snapshot.travel, pickup_service_s=snapshot.pickup_service_s,
            dropoff_service_s=snapshot.dropoff_service_s, policy=policy, now_s=snapshot.now_s)
    # -- end stacking
    times, arcs, b = None, None, None
    shortage = len(bundles) > len(couriers)
    weights = {
        "pickup_service_s": snapshot.pickup_service_s,
        "idle_weight": policy.idle_weight,
        "late_weight": policy.late_weight,
        "travel_weight": policy.travel_weight
        + (policy.shortage_travel_weight if shortage else 0.0),
        "busy_weight": policy.shortage_busy_weight if shortage else 0.0,
    }
    if bundles and couriers and len(bundles) * len(couriers) <= policy.dense_up_to_pairs:
        times = pair_costs(
            couriers, bundles, now_s=snapshot.now_s, travel=snapshot.travel, **weights
        )
    elif bundles and couriers:
        c = courier_arrays(couriers, snapshot.now_s)
        b = (bundles.arrays(snapshot.now_s) if isinstance(bundles, Bundles)
             else bundle_arrays(bundles, snapshot.now_s))
        ci, bi = candidate_arcs(c, b, travel=snapshot.travel,
                                pickup_service_s=snapshot.pickup_service_s,
                                k=policy.candidate_k)
        arcs = RoundArcs(courier_ix=ci, bundle_ix=bi,
                         times=arc_costs(c, b, ci, bi, travel=snapshot.travel, **weights))
    # Acceptance pricing (issue 11, the live path): + weight * (1 - p) / p * |b| * re-offer
    # delay per pair, dense or sparse alike; a no-op without Snapshot.acceptance or with
    # acceptance_weight 0.
    if snapshot.acceptance is not None and policy.acceptance_weight > 0:
        times, arcs = _priced_acceptance(snapshot, policy, couriers, bundles, times, arcs)
    return RoundCosts(
        updates=updates, couriers=tuple(couriers), bundles=bundles, times=times,
        arcs=arcs, bundle_arrays=b,
    )


def _priced_acceptance(snapshot: Snapshot, policy: DispatchPolicy,
                       couriers: Sequence[CourierState], bundles: Sequence[Bundle],
                       times: PairTimes | None, arcs: RoundArcs | None,
                       ) -> tuple[PairTimes | None, RoundArcs | None]:
    """The round's pair costs with the acceptance price added (``acceptance``)."""

    def priced(cost: NDArray[np.float64],
               on: tuple[NDArray[np.intp], NDArray[np.intp]] | None) -> NDArray[np.float64]:
        return price_acceptance(
            cost, couriers, bundles, pricing=snapshot.acceptance,
            weight=policy.acceptance_weight, now_s=snapshot.now_s, travel=snapshot.travel,
            pickup_service_s=snapshot.pickup_service_s,
            dropoff_service_s=snapshot.dropoff_service_s, infeasible=INFEASIBLE, arcs=on)

    if times is not None:
        times = replace(times, cost=priced(times.cost, None))
    if arcs is not None:
        arcs = replace(arcs, times=replace(arcs.times, cost=priced(
            arcs.times.cost, (arcs.courier_ix, arcs.bundle_ix))))
    return times, arcs


def plan_round(snapshot: Snapshot, policy: DispatchPolicy) -> DispatchPlan:
    """Decisions for one round. Never assigns a courier twice or an order twice;
    never plans a pickup before the ready time or after the courier's shift end;
    only instructs couriers that are idle now; never pairs parties of different tenants
    (a snapshot mixing tenants is planned as one round per tenant, ``worlds``).
    """
    worlds = split_by_tenant(snapshot)
    if len(worlds) == 1:
        plan = _plan_world(snapshot, policy)
    else:
        plan = merge_plans(_plan_world(w, policy) for w in worlds)
    check_plan(snapshot, plan)
    return plan


def _plan_world(snapshot: Snapshot, policy: DispatchPolicy) -> DispatchPlan:
    """``plan_round`` for a snapshot of one tenant."""
    if policy.kind is PolicyKind.GREEDY:
        return greedy_plan(snapshot)
    costs = round_costs(snapshot, policy)
    assignments, matched = _match_and_commit(snapshot, policy, costs)
    prepositions: tuple[Preposition, ...] = ()
    if policy.allow_prepositioning:
        now = snapshot.now_s
        free = [
            c
            for c in costs.couriers
            if c.free_s <= now and c.shift_start_s <= now and c.courier_id not in matched
        ]
        prepositions = plan_prepositions(snapshot, policy, free)
    return DispatchPlan(
        assignments=assignments, reassignments=costs.updates, prepositions=prepositions
    )


def _in_horizon(
    snapshot: Snapshot,
    policy: DispatchPolicy,
    absorbed: frozenset[str],
    updated: set[str],
) -> tuple[list[OpenOrder], list[CourierState]]:
    """Orders ready and couriers free within the horizon (couriers just updated excluded)."""
    now, horizon = snapshot.now_s, policy.horizon_s
    orders = [
        o for o in snapshot.orders if o.order_id not in absorbed and o.ready_s <= now + horizon
    ]
    couriers = [
        c
        for c in snapshot.couriers
        if c.shift_end_s > now and c.free_s <= now + horizon and c.courier_id not in updated
    ]
    return orders, couriers


def _match_and_commit(
    snapshot: Snapshot, policy: DispatchPolicy, costs: RoundCosts
) -> tuple[tuple[Assignment, ...], set[str]]:
    """(committed assignments, ids of every matched courier, committed or not)."""
    couriers, bundles = costs.couriers, costs.bundles
    if costs.times is not None:
        times = costs.times
        pairs = np.array(optimal_matching(times.cost), dtype=np.intp).reshape(-1, 2)
        ci, bi = pairs[:, 0], pairs[:, 1]
        travel_s, arrival_s, pickup_s = (times.travel_s[ci, bi], times.arrival_s[ci, bi],
                                         times.pickup_s[ci, bi])
        ready_s = np.array([bundles[j].ready_s for j in bi.tolist()], dtype=np.float64)
    elif costs.arcs is not None and costs.bundle_arrays is not None:
        times, ci, bi = costs.arcs.times, costs.arcs.courier_ix, costs.arcs.bundle_ix
        b = costs.bundle_arrays
        if len(bundles) > policy.cell_bundles:
            cell = cells_of(b.x_m, b.y_m, policy.cell_bundles)
            chosen = partitioned_matching(len(couriers), len(bundles), ci, bi, times.cost, cell)
        else:
            chosen = sparse_matching(len(couriers), len(bundles), ci, bi, times.cost)
        chosen = chosen[np.argsort(ci[chosen], kind="stable")]  # by courier, as dense
        ci, bi = ci[chosen], bi[chosen]
        travel_s, arrival_s, pickup_s = (times.travel_s[chosen], times.arrival_s[chosen],
                                         times.pickup_s[chosen])
        ready_s = b.ready_s[bi]
    else:
        return (), set()
    free_s = np.fromiter((couriers[i].free_s for i in ci.tolist()), np.float64, len(ci))
    start_s = np.fromiter((couriers[i].shift_start_s for i in ci.tolist()), np.float64, len(ci))
    commit = commit_mask(now_s=snapshot.now_s, courier_free_s=free_s,
                         courier_shift_start_s=start_s, ready_s=ready_s, travel_s=travel_s,
                         pickup_service_s=snapshot.pickup_service_s,
                         commit_slack_s=policy.commit_slack_s)
    at = np.flatnonzero(commit)
    # What each committed bundle's assignment names (a ``Bundles`` builds no ``Bundle``).
    made = ([(m, ids, ()) for m, ids in bundles.orders_of(bi[at].tolist())]
            if isinstance(bundles, Bundles)
            else [(b.merchant_id, b.order_ids, b.stops) for b in (bundles[j]
                                                                  for j in bi[at].tolist())])
    out = tuple(
        Assignment(
            courier_id=couriers[i].courier_id,
            merchant_id=merchant_id,
            order_ids=order_ids,
            arrival_s=arrival,
            pickup_s=pickup,
            stops=stops,  # stacking (issue 11 item 3): the route, () if not stacked
        )
        for i, (merchant_id, order_ids, stops), arrival, pickup in zip(
            ci[at].tolist(), made, arrival_s[at].tolist(), pickup_s[at].tolist(), strict=True)
    )
    return out, {couriers[i].courier_id for i in ci.tolist()}
