"""ETA training rows from an MDRP replay: each order's features at its placement time (what
the dispatcher knew then) and its realised click-to-door (what the replay did).

Features per order at placement minute ``t``:

- ``merchant_id`` the restaurant, ``region`` the instance, ``hour`` ``t // 60 % 24``,
  ``weekday`` 0 (the instances are one day);
- ``distance_m`` restaurant -> drop-off (euclidean: MDRP positions are planar metres),
  ``travel_s`` the MDRP travel time plus half the pickup and half the drop-off service (the
  handovers, as the replay counts them);
- ``prep_mean_s`` = ``prep_p90_s`` = ready time - placement: MDRP announces each order's
  ready time when it is placed;
- ``orders_per_min``: orders placed in each 5-minute bucket of ``(t - 30, t]``, per minute;
- ``idle_couriers``: mean over the bucket's minutes of couriers on shift (on <= m < off) and
  not holding an assignment (assigned <= m < free again after the last drop-off), from the
  replay up to ``t``;
- no cart (``items``/``subtotal_minor`` None): MDRP orders have none;
- from the dispatcher's snapshot at ``t`` (``simulate(observe=...)``: before that minute's
  round, so only what it knew then): ``courier_reach_s`` / ``courier_reach_3_s`` the first and
  third smallest ``max(free - t, 0) + travel to the restaurant`` over the couriers it sees
  (busy ones from their last stop, when their work ends; one already on its way to this
  restaurant from its arrival there; NaN with fewer couriers),
  ``idle_nearest_s`` the nearest idle courier's travel (NaN when none is idle),
  ``open_orders`` the unassigned orders, ``merchant_open_orders`` the restaurant's orders
  not yet picked up (unassigned or committed), both without this order.

Orders the replay never delivered are left out (no click-to-door to learn).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lastmile.core.dispatch import Snapshot
from lastmile.core.errors import InvalidInput
from lastmile.core.eta.features import (
    BUCKET_S,
    MERCHANT_PICKUPS,
    NEAR_S,
    SERIES_BUCKETS,
    EtaFeatures,
    EtaOutcome,
)
from lastmile.core.eta.table import EtaTable, table_from_rows
from lastmile.sim.eta_cache import cached_table
from lastmile.sim.mdrp.instance import Instance, Order, load_instance
from lastmile.sim.mdrp.runner import policy_named
from lastmile.sim.mdrp.simulation import SimResult, simulate

Known = dict[str, float]
"""Placement-time fields from the dispatcher's snapshot, by ``EtaFeatures`` name."""

_BUCKET_MIN = BUCKET_S // 60
_WINDOW_MIN = SERIES_BUCKETS * _BUCKET_MIN
_MERCHANT_WINDOW_MIN = 60


def _idle_per_minute(instance: Instance, result: SimResult, t0: int, t1: int) -> np.ndarray:
    """Idle couriers at each minute ``t0 .. t1 - 1`` (difference arrays over the day)."""
    delta = np.zeros(t1 - t0 + 1, dtype=np.int64)

    def add(start: int, end: int, v: int) -> None:
        a, b = max(start, t0) - t0, min(end, t1) - t0
        if b > a:
            delta[a] += v
            delta[b] -= v

    for c in instance.couriers:
        add(c.on_time, c.off_time, 1)
    half_d = instance.params.dropoff_service_min // 2
    for rec in result.assignments:
        free = max(result.deliveries[o].dropoff_time for o in rec.order_ids) + half_d
        # busy from the bundle's first commitment (an added order moves ``assignment_time``)
        busy = min([result.committed_at.get(o, rec.assignment_time) for o in rec.order_ids])
        add(busy, free, -1)
    return np.asarray(np.cumsum(delta)[:-1], dtype=np.float64)


class PlacementView:
    """An observer for ``simulate``: at each minute orders are placed, what the dispatcher
    knows about couriers and open work near each new order's restaurant (``known``)."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.placed: dict[int, list[Order]] = {}
        for o in instance.orders:
            self.placed.setdefault(o.placement_time, []).append(o)
        self.known: dict[str, Known] = {}

    def __call__(self, t: int, snap: Snapshot) -> None:
        now = snap.now_s
        committed = {a.courier_id for a in snap.committed}
        xs = np.array([c.x_m for c in snap.couriers])
        ys = np.array([c.y_m for c in snap.couriers])
        wait = np.array([max(c.free_s - now, 0.0) for c in snap.couriers])
        idle = np.array([c.courier_id not in committed and c.free_s <= now
                         and c.shift_start_s <= now for c in snap.couriers], dtype=bool)
        on_shift = np.array([c.shift_start_s <= now < c.shift_end_s for c in snap.couriers],
                            dtype=bool)
        # a courier already committed to a restaurant can take one more order there on its way
        # in (the replay's updates): its reach there is its arrival
        at_index = {c.courier_id: i for i, c in enumerate(snap.couriers)}
        arriving: dict[str, list[tuple[int, float]]] = {}
        for a in snap.committed:
            if a.courier_id in at_index:
                arriving.setdefault(a.merchant_id, []).append(
                    (at_index[a.courier_id], max(a.arrival_s - now, 0.0)))
        open_at: dict[str, int] = {}
        for oo in snap.orders:
            open_at[oo.merchant_id] = open_at.get(oo.merchant_id, 0) + 1
        for a in snap.committed:
            open_at[a.merchant_id] = open_at.get(a.merchant_id, 0) + len(a.orders)
        mpm = self.instance.params.meters_per_minute
        new = self.placed.get(t, ())
        queue = _queue_pickups(snap, mpm) if new else {}
        ready = np.array([oo.ready_s for oo in snap.orders])
        ox = np.array([oo.pickup_x_m for oo in snap.orders])
        oy = np.array([oo.pickup_y_m for oo in snap.orders])
        shared = {
            "couriers_on_shift": float(on_shift.sum()),
            "committed_orders": float(sum(len(a.orders) for a in snap.committed)),
            "busy_backlog_s": float(wait[on_shift].mean()) if on_shift.any() else math.nan,
        }
        for o in new:
            r = self.instance.restaurants[o.restaurant_id]
            travel = np.ceil(np.hypot(xs - r.x, ys - r.y) / mpm) * 60.0  # instance.travel_min
            reach = wait + travel
            for i, arrive in arriving.get(o.restaurant_id, ()):
                reach[i] = min(reach[i], arrive)
            reach = np.sort(reach)
            # ahead in the queue: waiting, food ready no later (this order itself excluded)
            ahead = ready <= o.ready_time * 60.0
            near = np.ceil(np.hypot(ox - r.x, oy - r.y) / mpm) * 60.0 <= NEAR_S
            pickup = queue.get(o.order_id, math.nan)
            self.known[o.order_id] = {
                "courier_reach_s": float(reach[0]) if len(reach) else math.nan,
                "courier_reach_3_s": float(reach[2]) if len(reach) > 2 else math.nan,
                "idle_nearest_s": float(travel[idle].min()) if idle.any() else math.nan,
                "open_orders": float(len(snap.orders) - 1),
                "merchant_open_orders": float(open_at.get(o.restaurant_id, 1) - 1),
                "orders_ahead": float(ahead.sum() - 1),
                "orders_ahead_near": float((ahead & near).sum() - 1),
                "queue_pickup_s": max(pickup - now, 0.0) if math.isfinite(pickup) else math.nan,
                **shared,
            }


def _queue_pickups(snap: Snapshot, mpm: float) -> dict[str, float]:
    """Each waiting order's pickup time (seconds) if the orders, earliest ready first, each
    took the courier who could pick it up soonest (a courier committed to that restaurant
    can add it on arrival, once; the others from where and when their work ends, then from
    that order's drop-off): a greedy stand-in for the dispatcher's queue, from what it knows
    now. NaN: no courier can reach it before its shift ends."""
    now = snap.now_s
    n = len(snap.couriers)
    xs = np.array([c.x_m for c in snap.couriers])
    ys = np.array([c.y_m for c in snap.couriers])
    free = np.array([max(c.free_s, c.shift_start_s, now) for c in snap.couriers])
    off = np.array([c.shift_end_s for c in snap.couriers])
    half_p = snap.pickup_service_s / 2.0
    service_d = snap.dropoff_service_s  # both halves of the drop-off
    joins: dict[str, list[float]] = {}
    for a in snap.committed:
        joins.setdefault(a.merchant_id, []).append(a.pickup_s)
    out: dict[str, float] = {}
    for o in sorted(snap.orders, key=lambda o: (o.ready_s, o.placed_s, o.order_id)):
        best, who = math.inf, -1
        if n:
            travel = np.ceil(np.hypot(xs - o.pickup_x_m, ys - o.pickup_y_m) / mpm) * 60.0
            pickup = np.maximum(o.ready_s, free + travel + half_p)
            pickup[pickup > off] = math.inf
            who = int(np.argmin(pickup))
            best = float(pickup[who])
        join = joins.get(o.merchant_id)
        if join:
            j = int(np.argmin(join))
            if max(join[j], o.ready_s) < best:
                best, who = max(join[j], o.ready_s), -1
                join.pop(j)
        out[o.order_id] = best if math.isfinite(best) else math.nan
        if who >= 0 and math.isfinite(best):
            drive = math.ceil(math.hypot(o.dropoff_x_m - o.pickup_x_m,
                                         o.dropoff_y_m - o.pickup_y_m) / mpm) * 60.0
            free[who] = best + half_p + drive + service_d
            xs[who], ys[who] = o.dropoff_x_m, o.dropoff_y_m
    return out


def replay(instance: Instance, policy: str) -> tuple[SimResult, dict[str, Known]]:
    """Run the named dispatch policy over ``instance``, watching each placement."""
    view = PlacementView(instance)
    return simulate(instance, policy_named(policy), observe=view), view.known


def eta_rows(instance: Instance, result: SimResult, known: Mapping[str, Known] | None = None
             ) -> tuple[list[EtaFeatures], list[EtaOutcome]]:
    """Features and outcomes of the delivered orders, in instance order; ``known`` (from
    ``replay``) fills the placement-time courier and open-work fields, else they are NaN."""
    p = instance.params
    half_p, half_d = p.pickup_service_min // 2, p.dropoff_service_min // 2
    placements = np.array(sorted(o.placement_time for o in instance.orders), dtype=np.int64)
    t0 = min([int(placements[0]) if len(placements) else 0]
             + [c.on_time for c in instance.couriers]) - _WINDOW_MIN
    t1 = max([int(placements[-1]) if len(placements) else 0]
             + [c.off_time for c in instance.couriers]) + 1
    idle_cum = np.concatenate([[0.0], np.cumsum(_idle_per_minute(instance, result, t0, t1))])
    orders = {o.order_id: o for o in instance.orders}
    commits = _Events([(m, (m - orders[i].placement_time) * 60.0)
                       for i, m in result.committed_at.items()])
    picked = sorted((d.pickup_time, orders[i].restaurant_id,
                     max(d.pickup_time - orders[i].ready_time, 0) * 60.0)
                    for i, d in result.deliveries.items())
    pickups = _Events([(m, v) for m, _, v in picked])
    by_merchant: dict[str, _Events] = {}
    for rid in {rid for _, rid, _ in picked}:
        by_merchant[rid] = _Events([(m, v) for m, r_, v in picked if r_ == rid])
    by_order = {o: rec for rec in result.assignments for o in rec.order_ids}
    features: list[EtaFeatures] = []
    outcomes: list[EtaOutcome] = []
    for o in instance.orders:
        d = result.deliveries.get(o.order_id)
        if d is None:
            continue
        t = o.placement_time
        r = instance.restaurants[o.restaurant_id]
        ends = t - _WINDOW_MIN + _BUCKET_MIN * np.arange(1, SERIES_BUCKETS + 1)
        counts = (np.searchsorted(placements, ends, side="right")
                  - np.searchsorted(placements, ends - _BUCKET_MIN, side="right"))
        # minutes (end - 5, end] before minute t's round: indices start + 1 .. stop in the
        # per-minute array (the last bucket's minutes end at t - 1)
        starts, stops = ends - _BUCKET_MIN, np.minimum(ends, t - 1)
        idle = ((idle_cum[stops - t0 + 1] - idle_cum[starts - t0 + 1])
                / np.maximum(stops - starts, 1))
        prep_s = float(max(0, o.ready_time - t) * 60)
        features.append(EtaFeatures(
            merchant_id=o.restaurant_id, region=instance.name, hour=(t // 60) % 24, weekday=0,
            distance_m=math.hypot(r.x - o.x, r.y - o.y),
            travel_s=float((instance.travel_min(r.x, r.y, o.x, o.y) + half_p + half_d) * 60),
            prep_mean_s=prep_s, prep_p90_s=prep_s,
            orders_per_min=tuple(float(c) / _BUCKET_MIN for c in counts),
            idle_couriers=tuple(float(v) for v in idle)))
        if known is not None and o.order_id in known:
            # what had happened before minute t (events of minute t come after the snapshot)
            mine = by_merchant.get(o.restaurant_id)
            snapshot: dict[str, Any] = dict(known[o.order_id])
            features[-1] = replace(
                features[-1], **snapshot,
                assign_delay_s=commits.means(starts, stops),
                pickup_delay_s=pickups.means(starts, stops),
                merchant_pickup_delay_s=(math.nan if mine is None else mine.last_mean(
                    t - 1, t - 1 - _MERCHANT_WINDOW_MIN, MERCHANT_PICKUPS)))
        outcomes.append(_outcome(instance, result, o, by_order[o.order_id].assignment_time))
    return features, outcomes


class _Events:
    """Values at whole minutes, sorted, with prefix sums: means over windows of minutes."""

    def __init__(self, events: list[tuple[int, float]]) -> None:
        events = sorted(events)
        self.minutes = np.array([m for m, _ in events], dtype=np.int64)
        self.values = np.array([v for _, v in events], dtype=np.float64)
        self.cum = np.concatenate([[0.0], np.cumsum(self.values)])

    def means(self, starts: np.ndarray, stops: np.ndarray) -> tuple[float, ...]:
        """Mean value of the events in each ``(start, stop]`` (NaN with none)."""
        a = np.searchsorted(self.minutes, starts, side="right")
        b = np.maximum(np.searchsorted(self.minutes, stops, side="right"), a)
        n = b - a
        total = self.cum[b] - self.cum[a]
        return tuple(float(x) if k else math.nan for x, k in
                     zip(np.divide(total, np.maximum(n, 1)), n, strict=True))

    def last_mean(self, stop: int, start: int, count: int) -> float:
        """Mean of the last ``count`` events in ``(start, stop]`` (NaN with none)."""
        b = int(np.searchsorted(self.minutes, stop, side="right"))
        a = max(int(np.searchsorted(self.minutes, start, side="right")), b - count)
        return float(self.values[a:b].mean()) if b > a else math.nan


def _position(instance: Instance, courier_id: str, node: str) -> tuple[float, float]:
    """Where a move's origin is: ``"0"`` the courier's start, else a restaurant or an order's
    drop-off (the solution files' node names)."""
    if node in instance.restaurants:
        r = instance.restaurants[node]
        return r.x, r.y
    if node == "0":
        c = next(c for c in instance.couriers if c.courier_id == courier_id)
        return c.x, c.y
    o = next(o for o in instance.orders if o.order_id == node)
    return o.x, o.y


def _outcome(instance: Instance, result: SimResult, order: Order, assigned: int) -> EtaOutcome:
    """Stages in seconds, summing to the total. Arrival at the restaurant is the courier's
    last move there before the pickup plus its travel, kept between the assignment (already
    there) and the pickup."""
    d = result.deliveries[order.order_id]
    r = instance.restaurants[order.restaurant_id]
    placed = order.placement_time
    assigned = max(assigned, placed)
    arrival = assigned
    for m in result.moves.get(d.courier_id, ()):
        if m.destination == order.restaurant_id and m.departure_time <= d.pickup_time:
            ox, oy = _position(instance, d.courier_id, m.origin)
            arrival = m.departure_time + instance.travel_min(ox, oy, r.x, r.y)
    arrival = min(max(arrival, assigned), d.pickup_time)
    return EtaOutcome(assign_s=float((assigned - placed) * 60),
                      to_merchant_s=float((arrival - assigned) * 60),
                      wait_s=float((d.pickup_time - arrival) * 60),
                      to_consumer_s=float((d.dropoff_time - d.pickup_time) * 60),
                      total_s=float((d.dropoff_time - placed) * 60))


CACHE_VERSION = 4
"""Bump when features or outcomes change: cached tables of another version are rebuilt."""


def replay_table(instance_dir: Path, *, policy: str = "optimised",
                 cache_dir: Path | None = None, jitter: bool = True) -> EtaTable:
    """Replay ``instance_dir`` with the named dispatch policy and return its delivered orders
    as an ``EtaTable`` (source = the instance name). With ``cache_dir`` the table is read
    from / written to ``<cache_dir>/<instance>-<policy>-v<CACHE_VERSION>.npz`` (the replay
    is deterministic: delete the file after changing the dispatcher). Outcomes are spread
    over their minute (below) unless ``jitter`` is False (the replay's whole minutes)."""
    instance_dir = Path(instance_dir)
    table = _replayed(instance_dir, policy, cache_dir)
    if not jitter:
        return table
    # MDRP runs in whole minutes: a delivery "at minute m" is somewhere in that minute, so
    # each outcome is spread uniformly over +-30 s (deterministic per instance); otherwise
    # most outcomes sit exactly on food-ready plus the drive and no interval can hold 80%
    # (randomised PIT for discrete outcomes, Czado, Gneiting & Held 2009).
    rng = np.random.default_rng(zlib.crc32(instance_dir.name.encode()))
    return replace(table, total_s=table.total_s + rng.uniform(-30.0, 30.0, len(table)))


def _replayed(instance_dir: Path, policy: str, cache_dir: Path | None) -> EtaTable:
    path = (Path(cache_dir) / f"{instance_dir.name}-{policy}-v{CACHE_VERSION}.npz"
            if cache_dir is not None else None)

    def build() -> EtaTable:
        instance = load_instance(instance_dir)
        result, known = replay(instance, policy)
        features, outcomes = eta_rows(instance, result, known)
        return table_from_rows(features, outcomes, source=instance.name)

    return cached_table(path, build)


def instance_dirs(roots: list[Path]) -> list[Path]:
    """Every MDRP instance folder (one with ``orders.txt``) given or directly under the given
    roots, sorted by name; raises InvalidInput when there is none."""
    found: list[Path] = []
    for root in roots:
        root = Path(root)
        if (root / "orders.txt").is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(d for d in root.iterdir() if (d / "orders.txt").is_file())
    if not found:
        raise InvalidInput("no_instances", f"no MDRP instance (a folder with orders.txt) in "
                           f"{[str(r) for r in roots]}", field="mdrp")
    return sorted(set(found), key=lambda d: d.name)
