"""Many trial bundles sequenced at once: ``bundling.make_bundle`` over arrays.

Bundle generation and assignment updates try thousands of small bundles a round (a
merchant's orders with the next one added; a waiting courier's bundle with one more
order). ``make_bundle`` sequences one trial in Python (all permutations up to 4 orders);
``evaluate`` sequences a whole batch of equal-size trials with numpy, one array
operation per route position over every (trial, permutation), and gives for each trial
exactly what ``make_bundle`` and ``bundle_excess_s`` give:

- the same floats, bit for bit: every sum is accumulated in the order the scalar code
  accumulates it (left to right, from 0), and every travel time is
  ``TravelModel.seconds_between``'s (``travel_seconds``: numpy's ``hypot`` can differ
  from ``math.hypot`` by an ulp, so a leg whose ceiling an ulp could move is recomputed
  with ``math.hypot``);
- the same sequence: permutations in ``itertools`` order, the first of least total
  wins (``argmin``), maxima kept first-come as Python's ``max`` keeps them.

Trials of more than ``EXACT_UP_TO`` orders (a tenant's ``max_bundle_size`` above 4)
are sequenced by ``make_bundle`` itself, one by one. Pure: numpy only, deterministic.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from lastmile.core.dispatch.model import Bundle, OpenOrder, TravelModel

# Largest trial sequenced over all permutations (``bundling.sequence_route``'s rule).
EXACT_UP_TO = 4
_PERMS = {s: np.array(list(itertools.permutations(range(s))), dtype=np.intp).reshape(-1, s)
          for s in range(1, EXACT_UP_TO + 1)}

_EPS = float(np.finfo(np.float64).eps)
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


def sequence_route(
    orders: Sequence[OpenOrder],
    *,
    travel: TravelModel,
    pickup_service_s: float,
    dropoff_service_s: float,
) -> tuple[tuple[OpenOrder, ...], tuple[float, ...], float]:
    """Best drop-off sequence of a same-merchant bundle.

    Returns (sequence, drop-off offsets from pickup, offset at which the courier
    leaves the last customer). Offsets follow the MDRP rules: leave the merchant
    half a pickup service after pickup, drop off half a drop-off service after
    arrival, leave the other half later. Up to 4 orders are sequenced exactly
    (all permutations); more by nearest neighbour.
    """
    if len(orders) <= 4:
        return _best_permutation(orders, travel, pickup_service_s, dropoff_service_s)
    candidates = [_nearest_neighbour(orders)]
    best: tuple[float, tuple[OpenOrder, ...], tuple[float, ...], float] | None = None
    for seq in candidates:
        offsets, end = _offsets(seq, travel, pickup_service_s, dropoff_service_s)
        total = sum(offsets)
        if best is None or total < best[0]:
            best = (total, tuple(seq), offsets, end)
    assert best is not None
    return best[1], best[2], best[3]


def _best_permutation(
    orders: Sequence[OpenOrder], travel: TravelModel, pickup_service_s: float,
    dropoff_service_s: float,
) -> tuple[tuple[OpenOrder, ...], tuple[float, ...], float]:
    """``sequence_route`` over all permutations, each leg's travel time computed once
    (16 legs for 4 orders instead of 96); the offsets add up in the order ``_offsets``
    adds them, so the floats, the minimum and its tie-break (first permutation in
    ``itertools`` order) are the same."""
    sec = travel.seconds_between
    first = [sec(o.pickup_x_m, o.pickup_y_m, o.dropoff_x_m, o.dropoff_y_m) for o in orders]
    leg = [[sec(a.dropoff_x_m, a.dropoff_y_m, b.dropoff_x_m, b.dropoff_y_m) for b in orders]
           for a in orders]
    half_d = dropoff_service_s / 2
    best: tuple[float, tuple[int, ...], tuple[float, ...], float] | None = None
    for perm in itertools.permutations(range(len(orders))):
        t = pickup_service_s / 2
        offsets = []
        prev = -1
        for i in perm:
            t += (first[i] if prev < 0 else leg[prev][i]) + half_d
            offsets.append(t)
            t += half_d
            prev = i
        total = sum(offsets)
        if best is None or total < best[0]:
            best = (total, perm, tuple(offsets), t)
    assert best is not None
    return tuple(orders[i] for i in best[1]), best[2], best[3]


def _offsets(
    seq: Sequence[OpenOrder], travel: TravelModel, pickup_service_s: float, dropoff_service_s: float
) -> tuple[tuple[float, ...], float]:
    half_d = dropoff_service_s / 2
    t = pickup_service_s / 2
    x, y = seq[0].pickup_x_m, seq[0].pickup_y_m
    offsets = []
    for o in seq:
        t += travel.seconds_between(x, y, o.dropoff_x_m, o.dropoff_y_m) + half_d
        offsets.append(t)
        t += half_d
        x, y = o.dropoff_x_m, o.dropoff_y_m
    return tuple(offsets), t


def _nearest_neighbour(orders: Sequence[OpenOrder]) -> list[OpenOrder]:
    left = list(orders)
    x, y = left[0].pickup_x_m, left[0].pickup_y_m
    seq = []
    while left:
        nxt = min(
            left, key=lambda o: (math.hypot(o.dropoff_x_m - x, o.dropoff_y_m - y), o.order_id)
        )
        left.remove(nxt)
        seq.append(nxt)
        x, y = nxt.dropoff_x_m, nxt.dropoff_y_m
    return seq


def make_bundle(
    orders: Sequence[OpenOrder],
    *,
    travel: TravelModel,
    pickup_service_s: float,
    dropoff_service_s: float,
) -> Bundle:
    seq, offsets, end = sequence_route(
        orders,
        travel=travel,
        pickup_service_s=pickup_service_s,
        dropoff_service_s=dropoff_service_s,
    )
    first = seq[0]
    return Bundle(
        merchant_id=first.merchant_id,
        order_ids=tuple(o.order_id for o in seq),
        ready_s=max(o.ready_s for o in seq),
        x_m=first.pickup_x_m,
        y_m=first.pickup_y_m,
        route_s=float(sum(offsets)),
        detour_s=float(sum(offsets))
        - sum(_direct_offset_s(o, travel, pickup_service_s, dropoff_service_s) for o in seq),
        last_leg_end_s=end,
        end_x_m=seq[-1].dropoff_x_m,
        end_y_m=seq[-1].dropoff_y_m,
        placed_s=tuple(o.placed_s for o in seq),
        readies_s=tuple(o.ready_s for o in seq),
    )


def _direct_offset_s(
    o: OpenOrder, travel: TravelModel, pickup_service_s: float, dropoff_service_s: float
) -> float:
    leg = travel.seconds_between(o.pickup_x_m, o.pickup_y_m, o.dropoff_x_m, o.dropoff_y_m)
    return pickup_service_s / 2 + leg + dropoff_service_s / 2


def bundle_excess_s(bundle: Bundle) -> float:
    """Click-to-door a bundle adds over serving each order alone at its ready time."""
    return sum(bundle.ready_s - r for r in bundle.readies_s) + bundle.detour_s



class RouteArgs(TypedDict):
    """How routes are timed (the keyword arguments of ``make_bundle`` and ``evaluate``)."""

    travel: TravelModel
    pickup_service_s: float
    dropoff_service_s: float


@dataclass(frozen=True, slots=True)
class OrderTable:
    """Orders as columns (index i = ``orders[i]``)."""

    orders: tuple[OpenOrder, ...]
    px: FloatArray
    py: FloatArray
    dx: FloatArray
    dy: FloatArray
    ready_s: FloatArray

    @staticmethod
    def of(orders: Sequence[OpenOrder]) -> OrderTable:
        n = len(orders)
        px, py, dx, dy, ready = (np.fromiter(map(operator.attrgetter(name), orders), np.float64, n)
                                 for name in ("pickup_x_m", "pickup_y_m", "dropoff_x_m",
                                              "dropoff_y_m", "ready_s"))
        return OrderTable(orders=tuple(orders), px=px, py=py, dx=dx, dy=dy, ready_s=ready)


@dataclass(frozen=True, slots=True)
class Trials:
    """Trial t's bundle: its orders in drop-off sequence (``seq[t]``, indices into the
    table), and the figures ``make_bundle`` / ``bundle_excess_s`` give it."""

    seq: IntArray
    ready_s: FloatArray
    route_s: FloatArray
    detour_s: FloatArray
    last_leg_end_s: FloatArray
    excess_s: FloatArray


def travel_seconds(travel: TravelModel, ax: FloatArray, ay: FloatArray, bx: FloatArray,
                   by: FloatArray) -> FloatArray:
    """``travel.seconds_between`` elementwise, equal to it bit for bit.

    numpy's ``hypot`` (the C library's) and ``math.hypot`` are each within an ulp of the
    true distance, so they differ by at most 2 ulps; a distance whose step count is the
    same more than 4 ulps either side of numpy's value has that step count whichever is
    used. The
    few others (a distance at a step boundary, e.g. along an axis) use ``math.hypot``.
    """
    full = ax - bx
    ex, ey = full.ravel(), (ay - by).ravel()
    h = np.hypot(ex, ey)
    # 8 relative epsilons are at least 8 ulps of h, rounding included more than 4.
    lo, hi = h * (1 - 8 * _EPS), h * (1 + 8 * _EPS)
    steps = np.ceil(h / travel.metres_per_step)
    unsure = np.flatnonzero(np.ceil(lo / travel.metres_per_step)
                            != np.ceil(hi / travel.metres_per_step))
    if unsure.size:
        mps = travel.metres_per_step
        steps[unsure] = [math.ceil(math.hypot(x, y) / mps)
                         for x, y in zip(ex[unsure].tolist(), ey[unsure].tolist(), strict=True)]
    out: FloatArray = (steps * travel.step_s).reshape(full.shape)
    return out


def evaluate(table: OrderTable, rows: IntArray, *, travel: TravelModel,
             pickup_service_s: float, dropoff_service_s: float) -> Trials:
    """Sequence trials ``rows`` (t x s indices into ``table``, each row a trial's orders
    in the order ``make_bundle`` would be given them); s >= 1."""
    t_count, s = rows.shape
    if s > EXACT_UP_TO:
        return _one_by_one(table, rows, travel, pickup_service_s, dropoff_service_s)
    half_p, half_d = pickup_service_s / 2, dropoff_service_s / 2
    first = travel_seconds(travel, table.px[rows], table.py[rows], table.dx[rows],
                           table.dy[rows])  # t x s
    a, b = rows[:, :, None], rows[:, None, :]
    leg = travel_seconds(travel, table.dx[a], table.dy[a], table.dx[b], table.dy[b])  # t x s x s
    perms = _PERMS[s]
    t = np.full((t_count, len(perms)), half_p)
    total = np.zeros((t_count, len(perms)))
    prev = perms[:, 0]
    for pos in range(s):
        i = perms[:, pos]
        step = (first[:, i] if pos == 0 else leg[:, prev, i]) + half_d
        t = t + step
        total = total + t
        t = t + half_d
        prev = i
    best = np.argmin(total, axis=1)
    at = np.arange(t_count)
    order = perms[best]  # t x s positions within the row
    seq = np.take_along_axis(rows, order, axis=1)
    ready = table.ready_s[seq]
    route = total[at, best]
    direct = np.zeros(t_count)
    bundle_ready = ready[:, 0]
    for pos in range(s):
        direct = direct + ((half_p + np.take_along_axis(first, order[:, pos:pos + 1], axis=1)[:, 0])
                           + half_d)
        bundle_ready = np.where(ready[:, pos] > bundle_ready, ready[:, pos], bundle_ready)
    detour = route - direct
    wait = np.zeros(t_count)
    for pos in range(s):
        wait = wait + (bundle_ready - ready[:, pos])
    return Trials(seq=seq, ready_s=bundle_ready, route_s=route, detour_s=detour,
                  last_leg_end_s=t[at, best], excess_s=wait + detour)


def _one_by_one(table: OrderTable, rows: IntArray, travel: TravelModel, pickup_service_s: float,
                dropoff_service_s: float) -> Trials:
    """``evaluate`` for trials of more than ``EXACT_UP_TO`` orders: ``make_bundle``."""
    made = [make_bundle([table.orders[i] for i in row], travel=travel,
                        pickup_service_s=pickup_service_s, dropoff_service_s=dropoff_service_s)
            for row in rows.tolist()]
    seq = [[{table.orders[i].order_id: i for i in row}[oid] for oid in b.order_ids]
           for row, b in zip(rows.tolist(), made, strict=True)]
    return Trials(seq=np.array(seq, dtype=np.intp).reshape(rows.shape),
                  ready_s=np.array([b.ready_s for b in made], dtype=np.float64),
                  route_s=np.array([b.route_s for b in made], dtype=np.float64),
                  detour_s=np.array([b.detour_s for b in made], dtype=np.float64),
                  last_leg_end_s=np.array([b.last_leg_end_s for b in made], dtype=np.float64),
                  excess_s=np.array([bundle_excess_s(b) for b in made], dtype=np.float64))


def to_bundles(table: OrderTable, trials: Trials, picks: Sequence[int]) -> list[Bundle]:
    """Trials ``picks`` as the ``Bundle``s ``make_bundle`` builds for them."""
    at = np.asarray(picks, dtype=np.intp)
    orders = table.orders
    out = []
    for seq_ix, route, detour, end in zip(
            trials.seq[at].tolist(), trials.route_s[at].tolist(), trials.detour_s[at].tolist(),
            trials.last_leg_end_s[at].tolist(), strict=True):
        if len(seq_ix) == 1:
            o = orders[seq_ix[0]]
            out.append(new_bundle(o.merchant_id, (o.order_id,), o.ready_s, o.pickup_x_m,
                                  o.pickup_y_m, route, detour, end, o.dropoff_x_m, o.dropoff_y_m,
                                  (o.placed_s,), (o.ready_s,)))
            continue
        seq = [orders[i] for i in seq_ix]
        first, last = seq[0], seq[-1]
        readies = tuple(o.ready_s for o in seq)
        out.append(new_bundle(first.merchant_id, tuple(o.order_id for o in seq), max(readies),
                              first.pickup_x_m, first.pickup_y_m, route, detour, end,
                              last.dropoff_x_m, last.dropoff_y_m,
                              tuple(o.placed_s for o in seq), readies))
    return out


_new = object.__new__
_set = object.__setattr__


def new_bundle(merchant_id: str, order_ids: tuple[str, ...], ready_s: float, x_m: float,
               y_m: float, route_s: float, detour_s: float, last_leg_end_s: float,
               end_x_m: float, end_y_m: float, placed_s: tuple[float, ...],
               readies_s: tuple[float, ...]) -> Bundle:
    """``Bundle(...)`` of an unstacked bundle, about a quarter cheaper than the keyword
    ``__init__`` of the frozen dataclass (no keyword parsing; ``Bundle`` has no
    ``__post_init__``). ``test_dispatch_fast_paths`` checks it sets every field and
    equals ``Bundle(...)``."""
    b = _new(Bundle)
    _set(b, "merchant_id", merchant_id)
    _set(b, "order_ids", order_ids)
    _set(b, "ready_s", ready_s)
    _set(b, "x_m", x_m)
    _set(b, "y_m", y_m)
    _set(b, "route_s", route_s)
    _set(b, "detour_s", detour_s)
    _set(b, "last_leg_end_s", last_leg_end_s)
    _set(b, "end_x_m", end_x_m)
    _set(b, "end_y_m", end_y_m)
    _set(b, "placed_s", placed_s)
    _set(b, "readies_s", readies_s)
    _set(b, "stops", ())
    _set(b, "latest_pickup_s", math.inf)
    return b
