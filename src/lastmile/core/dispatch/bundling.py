"""Bundle generation: partition open orders into same-merchant bundles.

Rule: a bundle holds orders of one merchant only; its ready time is the
latest ready time in it; its orders are delivered in the sequence that
minimises the sum of their drop-off times. An order joins the current bundle
of its merchant (orders taken in ready-time order) only when

- the bundle is below the round's size cap,
- its ready time is within ``max_ready_gap_s`` of the bundle's first order, and
- the extra click-to-door it adds to the bundle (waiting for the later ready
  time plus the detour of the shared route) is at most ``max_extra_delay_s``.

The size cap follows Reyes et al. (2018): ceil(orders / available couriers),
bounded by the policy, so bundles appear only when couriers are short.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence

from lastmile.core.dispatch.model import Bundle, OpenOrder, TravelModel


def bundle_size_cap(*, n_orders: int, n_couriers: int, max_bundle_size: int) -> int:
    """ceil(n_orders / n_couriers) clipped to [1, max_bundle_size]; no courier -> max."""
    if n_couriers <= 0:
        return max_bundle_size
    return max(1, min(max_bundle_size, math.ceil(n_orders / n_couriers)))


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
