"""The one-at-a-time bundle rules the engine's batched code must equal exactly.

``generate_bundles`` and ``plan_updates`` as they were before they were batched
(``core.dispatch.sequencing``): every trial bundle built with ``make_bundle`` in Python.
The hypothesis tests in ``test_dispatch_sequencing`` require the engine's results to be
equal to these on random snapshots.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from lastmile.core.dispatch.bundling import bundle_excess_s, make_bundle
from lastmile.core.dispatch.model import (
    Bundle,
    CommittedAssignment,
    DispatchPolicy,
    OpenOrder,
    Reassignment,
    Snapshot,
    TravelModel,
)


def generate_bundles(
    orders: Sequence[OpenOrder],
    *,
    travel: TravelModel,
    pickup_service_s: float,
    dropoff_service_s: float,
    size_cap: int,
    max_ready_gap_s: float,
    max_extra_delay_s: float,
) -> tuple[Bundle, ...]:
    """Partition ``orders`` into bundles (see the module rule); every order in exactly one.

    No orders give no bundles.
    """
    by_merchant: dict[str, list[OpenOrder]] = defaultdict(list)
    for o in orders:
        by_merchant[o.merchant_id].append(o)
    out: list[Bundle] = []
    for merchant_id in sorted(by_merchant):
        group = sorted(by_merchant[merchant_id], key=lambda o: (o.ready_s, o.order_id))
        out.extend(
            _bundle_merchant(
                group,
                travel=travel,
                pickup_service_s=pickup_service_s,
                dropoff_service_s=dropoff_service_s,
                size_cap=size_cap,
                max_ready_gap_s=max_ready_gap_s,
                max_extra_delay_s=max_extra_delay_s,
            )
        )
    return tuple(out)


def _bundle_merchant(
    group: Sequence[OpenOrder],
    *,
    travel: TravelModel,
    pickup_service_s: float,
    dropoff_service_s: float,
    size_cap: int,
    max_ready_gap_s: float,
    max_extra_delay_s: float,
) -> list[Bundle]:
    def build(orders: Sequence[OpenOrder]) -> Bundle:
        return make_bundle(
            orders,
            travel=travel,
            pickup_service_s=pickup_service_s,
            dropoff_service_s=dropoff_service_s,
        )

    out: list[Bundle] = []
    current: list[OpenOrder] = [group[0]]
    current_bundle = build(current)
    for o in group[1:]:
        if len(current) < size_cap and o.ready_s - current[0].ready_s <= max_ready_gap_s:
            trial = build([*current, o])
            if bundle_excess_s(trial) - bundle_excess_s(current_bundle) <= max_extra_delay_s:
                current.append(o)
                current_bundle = trial
                continue
        out.append(current_bundle)
        current = [o]
        current_bundle = build(current)
    out.append(current_bundle)
    return out


def plan_updates(
    snapshot: Snapshot, policy: DispatchPolicy
) -> tuple[tuple[Reassignment, ...], frozenset[str]]:
    """(updated bundles, ids of the open orders they absorbed)."""
    by_merchant: dict[str, list[OpenOrder]] = defaultdict(list)
    for o in sorted(snapshot.orders, key=lambda o: (o.ready_s, o.order_id)):
        by_merchant[o.merchant_id].append(o)
    shift_end = {c.courier_id: c.shift_end_s for c in snapshot.couriers}
    used: set[str] = set()
    out: list[Reassignment] = []
    for a in sorted(snapshot.committed, key=lambda a: a.courier_id):
        if not (a.arrival_s <= snapshot.now_s <= a.pickup_s) or a.merchant_id not in by_merchant:
            continue
        end = shift_end.get(a.courier_id, a.pickup_s)
        grown = _grow(
            a,
            [o for o in by_merchant[a.merchant_id] if o.order_id not in used],
            snapshot=snapshot,
            policy=policy,
            shift_end_s=end,
        )
        if grown is not None:
            orders, pickup = grown
            used.update(o.order_id for o in orders)
            out.append(
                Reassignment(
                    courier_id=a.courier_id,
                    merchant_id=a.merchant_id,
                    order_ids=tuple(o.order_id for o in orders),
                    pickup_s=pickup,
                )
            )
    return tuple(out), frozenset(used)


def _grow(
    a: CommittedAssignment,
    candidates: list[OpenOrder],
    *,
    snapshot: Snapshot,
    policy: DispatchPolicy,
    shift_end_s: float,
) -> tuple[tuple[OpenOrder, ...], float] | None:
    def build(orders: list[OpenOrder] | tuple[OpenOrder, ...]) -> Bundle:
        return make_bundle(
            orders,
            travel=snapshot.travel,
            pickup_service_s=snapshot.pickup_service_s,
            dropoff_service_s=snapshot.dropoff_service_s,
        )

    current = build(a.orders)
    members = list(a.orders)
    pickup = a.pickup_s
    grew = False
    for o in candidates:
        if len(members) >= policy.max_bundle_size:
            break
        new_pickup = max(pickup, o.ready_s)
        if o.ready_s > a.pickup_s + policy.max_update_delay_s or new_pickup > shift_end_s:
            # Candidates come by ready time and ``pickup`` only grows: every later one
            # fails too (a break, not a skip: the updates of a hot merchant's waiting
            # couriers were quadratic in its open orders).
            break
        trial = build([*members, o])
        before = bundle_excess_s(current) + len(members) * (pickup - current.ready_s)
        after = bundle_excess_s(trial) + len(members) * (new_pickup - trial.ready_s)
        if after - before <= _limit(snapshot, policy):
            members.append(o)
            current, pickup, grew = trial, new_pickup, True
    if not grew:
        return None
    order_ids = current.order_ids
    by_id = {o.order_id: o for o in members}
    return tuple(by_id[i] for i in order_ids), pickup


def _limit(snapshot: Snapshot, policy: DispatchPolicy) -> float:
    """What an update may add: at most ``quiet_update_max_extra_s`` when at least as many
    couriers are idle now as orders are open, ``max_extra_delay_s`` otherwise."""
    idle = [c for c in snapshot.couriers
            if c.shift_start_s <= snapshot.now_s < c.shift_end_s and c.free_s <= snapshot.now_s]
    if len(snapshot.orders) > len(idle):
        return policy.max_extra_delay_s
    return min(policy.max_extra_delay_s, policy.quiet_update_max_extra_s)
