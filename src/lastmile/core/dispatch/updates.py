"""Assignment updates: add open orders to a bundle whose courier waits at the merchant.

Rule (MDRP variant "assignment updates"): while a courier is at the merchant of
its committed bundle and has not picked up yet (``arrival <= now <= pickup``), an
open order of that merchant joins the bundle when its ready time is at most
``max_update_delay_s`` past the planned pickup, the bundle stays within
``max_bundle_size``, the new pickup is still before the courier's shift end, and
the click-to-door the order adds (wait plus detour, over everyone in the bundle)
is at most ``max_extra_delay_s``. Orders are tried by ready time.
"""

from __future__ import annotations

from collections import defaultdict

from lastmile.core.dispatch.bundling import bundle_excess_s, make_bundle
from lastmile.core.dispatch.model import (
    Bundle,
    CommittedAssignment,
    DispatchPolicy,
    OpenOrder,
    Reassignment,
    Snapshot,
)


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
        if after - before <= policy.max_extra_delay_s:
            members.append(o)
            current, pickup, grew = trial, new_pickup, True
    if not grew:
        return None
    order_ids = current.order_ids
    by_id = {o.order_id: o for o in members}
    return tuple(by_id[i] for i in order_ids), pickup
