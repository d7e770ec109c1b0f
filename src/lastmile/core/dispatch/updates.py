"""Assignment updates: add open orders to a bundle whose courier waits at the merchant.

Rule (MDRP variant "assignment updates"): while a courier is at the merchant of
its committed bundle and has not picked up yet (``arrival <= now <= pickup``), an
open order of that merchant joins the bundle when its ready time is at most
``max_update_delay_s`` past the planned pickup, the bundle stays within
``max_bundle_size``, the new pickup is still before the courier's shift end, and
the click-to-door the order adds (wait plus detour, over everyone in the bundle)
is at most ``max_extra_delay_s``. Orders are tried by ready time.

In a quiet round (at least as many couriers idle now as open orders) the added
click-to-door may be at most ``quiet_update_max_extra_s`` instead (``update_limit_s``):
an idle courier can take the order alone, so growing a waiting courier's bundle at the
price of a later drop-off for its orders only loses click-to-door. When couriers are
short, the bundle saves a courier trip and the full ``max_extra_delay_s`` applies.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from numpy.typing import NDArray

from lastmile.core.dispatch.model import (
    CommittedAssignment,
    DispatchPolicy,
    OpenOrder,
    Reassignment,
    Snapshot,
)
from lastmile.core.dispatch.ready_order import by_ready_time
from lastmile.core.dispatch.sequencing import OrderTable, RouteArgs, evaluate

IntArray = NDArray[np.intp]


def plan_updates(
    snapshot: Snapshot, policy: DispatchPolicy
) -> tuple[tuple[Reassignment, ...], frozenset[str]]:
    """(updated bundles, ids of the open orders they absorbed).

    Couriers are taken by courier id; a courier's candidates are its merchant's open
    orders not absorbed by an earlier courier, so only couriers at the same merchant
    depend on each other. They are grown in waves (the first eligible courier of every
    merchant, then the second, ...), and each wave in steps: every courier's remaining
    candidates are tried at once against its current bundle (``sequencing.evaluate``);
    the first accepted one is exactly the one the one-at-a-time rule accepts, because a
    refused candidate leaves the bundle as it was. A step per order a courier absorbs.
    """
    now = snapshot.now_s
    waiting = [a for a in sorted(snapshot.committed, key=lambda a: a.courier_id)
               if a.arrival_s <= now <= a.pickup_s and 0 < len(a.orders) < policy.max_bundle_size]
    # Only the orders of merchants where a courier waits can join a bundle.
    at = {a.merchant_id for a in waiting}
    pool: dict[str, list[OpenOrder]] = defaultdict(list)
    for o in by_ready_time([o for o in snapshot.orders if o.merchant_id in at],
                           by_merchant=False):
        pool[o.merchant_id].append(o)
    waiting = [a for a in waiting if a.merchant_id in pool]
    shift_end = {c.courier_id: c.shift_end_s for c in snapshot.couriers}
    if not waiting:
        return (), frozenset()
    open_orders: list[OpenOrder] = []
    start: dict[str, int] = {}  # where each merchant's orders begin in the table
    for m in sorted(pool):
        start[m] = len(open_orders)
        open_orders.extend(pool[m])
    table = OrderTable.of([*open_orders, *(o for a in waiting for o in a.orders)])
    used = np.zeros(len(table.orders), dtype=bool)
    grown: dict[int, Reassignment] = {}
    waves: dict[str, list[int]] = defaultdict(list)
    for k, a in enumerate(waiting):
        waves[a.merchant_id].append(k)
    first_held = len(open_orders) + np.cumsum([0, *(len(a.orders) for a in waiting)])
    held = [list(range(first_held[k], first_held[k] + len(a.orders)))
            for k, a in enumerate(waiting)]
    kw: RouteArgs = {"travel": snapshot.travel, "pickup_service_s": snapshot.pickup_service_s,
                     "dropoff_service_s": snapshot.dropoff_service_s}
    figures = _held_figures(held, table, kw)
    limit = update_limit_s(snapshot, policy)
    for w in range(max(len(v) for v in waves.values())):
        wave, chains = [], []
        for k in (v[w] for v in waves.values() if len(v) > w):
            a = waiting[k]
            lo = start[a.merchant_id]
            ix = np.arange(lo, lo + len(pool[a.merchant_id]))
            ix = ix[~used[ix]]
            ix = ix[table.ready_s[ix] <= a.pickup_s + policy.max_update_delay_s]
            if ix.size == 0:
                continue  # nothing can join: the bundle stays as it is
            chain = _Chain(a, held[k], ix, shift_end.get(a.courier_id, a.pickup_s))
            chain.excess, chain.ready, chain.seq = figures[k]
            wave.append(k)
            chains.append(chain)
        _grow_all(chains, table, kw, policy, limit)
        for k, chain in zip(wave, chains, strict=True):
            if chain.grew:
                used[chain.seq] = True
                grown[k] = Reassignment(
                    courier_id=chain.held.courier_id, merchant_id=chain.held.merchant_id,
                    order_ids=tuple(table.orders[i].order_id for i in chain.seq),
                    pickup_s=chain.pickup)
    out = tuple(grown[k] for k in sorted(grown))
    absorbed = frozenset(i for r in out for i in r.order_ids)
    return out, absorbed


def update_limit_s(snapshot: Snapshot, policy: DispatchPolicy) -> float:
    """The click-to-door an update may add: ``max_extra_delay_s``, or at most
    ``quiet_update_max_extra_s`` in a quiet round (at least as many couriers idle now as
    open orders), where an idle courier can take the order alone."""
    now = snapshot.now_s
    idle = sum(1 for c in snapshot.couriers
               if c.shift_start_s <= now < c.shift_end_s and c.free_s <= now)
    if len(snapshot.orders) > idle:
        return policy.max_extra_delay_s
    return min(policy.max_extra_delay_s, policy.quiet_update_max_extra_s)


class _Chain:
    """One waiting courier's bundle as it grows: members (table indices, in the order they
    joined), its figures, and the candidates left (table indices, by ready time)."""

    def __init__(self, held: CommittedAssignment, members: list[int], candidates: IntArray,
                 shift_end_s: float) -> None:
        self.held, self.members, self.candidates = held, members, candidates
        self.end_s = shift_end_s
        self.pickup: float = held.pickup_s
        self.grew = False
        self.done = False
        self.seq: list[int] = []
        self.excess = 0.0
        self.ready = 0.0


def _held_figures(held: list[list[int]], table: OrderTable, kw: RouteArgs,
                  ) -> list[tuple[float, float, list[int]]]:
    """(excess, ready time, drop-off sequence) of each held bundle, one batch per size."""
    out: list[tuple[float, float, list[int]]] = [(0.0, 0.0, [])] * len(held)
    sizes: dict[int, list[int]] = defaultdict(list)
    for k, members in enumerate(held):
        sizes[len(members)].append(k)
    for ks in sizes.values():
        got = evaluate(table, np.array([held[k] for k in ks], dtype=np.intp), **kw)
        for k, ex, rd, seq in zip(ks, got.excess_s.tolist(), got.ready_s.tolist(),
                                  got.seq.tolist(), strict=True):
            out[k] = (ex, rd, seq)
    return out


def _grow_all(chains: list[_Chain], table: OrderTable, kw: RouteArgs,
              policy: DispatchPolicy, limit_s: float) -> None:
    """Grow chains of distinct merchants (each with candidates, its held bundle's figures
    set), each as ``_grow_one`` would, in batches."""
    for c in chains:
        c.done = len(c.members) >= policy.max_bundle_size
    while True:
        live = [c for c in chains if not c.done]
        if not live:
            return
        for size, group in _by_size(live).items():
            counts = [len(c.candidates) for c in group]
            cand = np.concatenate([c.candidates for c in group])
            owner = np.repeat(np.arange(len(group)), counts)
            members = np.array([c.members for c in group], dtype=np.intp)
            trials = evaluate(table, np.hstack([members[owner], cand[:, None]]), **kw)
            pickup = np.array([c.pickup for c in group], dtype=np.float64)[owner]
            ready = table.ready_s[cand]
            new_pickup = np.where(ready > pickup, ready, pickup)
            stop = new_pickup > np.array([c.end_s for c in group], dtype=np.float64)[owner]
            before = np.array([c.excess + size * (c.pickup - c.ready) for c in group],
                              dtype=np.float64)[owner]
            after = trials.excess_s + size * (new_pickup - trials.ready_s)
            fine = after - before <= limit_s
            hit = np.flatnonzero(stop | fine)
            first = dict(zip(owner[hit][::-1].tolist(), hit[::-1].tolist(), strict=True))
            offset = np.concatenate([[0], np.cumsum(counts)])
            for g, c in enumerate(group):
                e = first.get(g)
                if e is None or stop[e]:
                    c.done = True
                    continue
                o = table.orders[int(cand[e])]
                c.members = [*c.members, int(cand[e])]
                c.pickup = max(c.pickup, o.ready_s)
                c.excess, c.ready = float(trials.excess_s[e]), float(trials.ready_s[e])
                c.seq = trials.seq[e].tolist()
                c.grew = True
                c.candidates = c.candidates[e - offset[g] + 1:]
                c.done = len(c.members) >= policy.max_bundle_size or c.candidates.size == 0


def _by_size(chains: list[_Chain]) -> dict[int, list[_Chain]]:
    out: dict[int, list[_Chain]] = defaultdict(list)
    for c in chains:
        out[len(c.members)].append(c)
    return out
