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
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from lastmile.core.dispatch.model import Bundle, OpenOrder, TravelModel
from lastmile.core.dispatch.sequencing import (
    EXACT_UP_TO,
    OrderTable,
    RouteArgs,
    Trials,
    bundle_excess_s,
    evaluate,
    make_bundle,
    sequence_route,
    to_bundles,
)

__all__ = ["bundle_excess_s", "bundle_size_cap", "generate_bundles", "make_bundle",
           "sequence_route"]


def bundle_size_cap(*, n_orders: int, n_couriers: int, max_bundle_size: int) -> int:
    """ceil(n_orders / n_couriers) clipped to [1, max_bundle_size]; no courier -> max."""
    if n_couriers <= 0:
        return max_bundle_size
    return max(1, min(max_bundle_size, math.ceil(n_orders / n_couriers)))


def generate_bundles(
    orders: Sequence[OpenOrder],
    *,
    travel: TravelModel,
    pickup_service_s: float,
    dropoff_service_s: float,
    size_cap: int,
    max_ready_gap_s: float,
    max_extra_delay_s: float,
    now_s: float | None = None,
) -> tuple[Bundle, ...]:
    """Partition ``orders`` into bundles (see the module rule); every order in exactly one.

    No orders give no bundles. A merchant's bundle is always a run of consecutive orders
    in its ready-time order, so every run the rule could try (up to ``EXACT_UP_TO``
    orders) is sequenced up front in one batch (``sequencing.evaluate``) and the rule
    then only compares their excess; longer runs (a cap above 4) are built one by one.
    """
    if not orders:
        return ()
    by_merchant: dict[str, list[OpenOrder]] = defaultdict(list)
    for o in orders:
        by_merchant[o.merchant_id].append(o)
    ordered: list[OpenOrder] = []
    bounds = [0]
    for merchant_id in sorted(by_merchant):
        ordered.extend(sorted(by_merchant[merchant_id], key=lambda o: (o.ready_s, o.order_id)))
        bounds.append(len(ordered))
    table = OrderTable.of(ordered)
    if now_s is not None:  # food already ready waits from now on, whatever its ready time
        table = replace(table, ready_s=np.maximum(table.ready_s, now_s))
    runs = _Runs(table, np.repeat(np.arange(len(bounds) - 1), np.diff(bounds)), size_cap,
                 travel=travel, pickup_service_s=pickup_service_s,
                 dropoff_service_s=dropoff_service_s)
    ready = table.ready_s.tolist()
    chosen: list[tuple[int, int]] = []  # runs (i, j) of the bundles, in output order
    for lo, hi in itertools.pairwise(bounds):
        i = lo  # the current bundle is ordered[i:j]
        for j in range(lo + 1, hi):
            if (j - i < size_cap and ready[j] - ready[i] <= max_ready_gap_s
                    and runs.excess(i, j + 1) - runs.excess(i, j) <= max_extra_delay_s):
                continue
            chosen.append((i, j))
            i = j
        chosen.append((i, hi))
    return tuple(runs.bundles(chosen))


class _Runs:
    """Every run ``ordered[i:j]`` of one merchant of at most ``min(cap, EXACT_UP_TO)``
    orders, sequenced in one batch per length; longer runs sequenced when asked."""

    def __init__(self, table: OrderTable, merchant: NDArray[np.intp], cap: int, *,
                 travel: TravelModel, pickup_service_s: float, dropoff_service_s: float) -> None:
        self._table = table
        self._clamped = any(r != o.ready_s for r, o in zip(table.ready_s.tolist(), table.orders,
                                                           strict=True))
        self._kw: RouteArgs = {"travel": travel, "pickup_service_s": pickup_service_s,
                    "dropoff_service_s": dropoff_service_s}
        n = len(table.orders)
        self._row: dict[int, list[int]] = {}  # run length -> trial row of each start (-1)
        self._trials: dict[int, Trials] = {}
        self._excess: dict[int, list[float]] = {}
        self._long: dict[tuple[int, int], Bundle] = {}
        for s in range(1, min(cap, EXACT_UP_TO) + 1):
            starts = np.arange(max(0, n - s + 1))
            starts = starts[merchant[starts] == merchant[starts + s - 1]]
            trials = evaluate(table, starts[:, None] + np.arange(s), **self._kw)
            row = np.full(n, -1, np.intp)
            row[starts] = np.arange(len(starts))
            self._row[s], self._trials[s] = row.tolist(), trials
            self._excess[s] = trials.excess_s.tolist()

    def excess(self, i: int, j: int) -> float:
        s = j - i
        if s in self._row:
            return self._excess[s][self._row[s][i]]
        b = self.bundle(i, j)
        if not self._clamped:
            return bundle_excess_s(b)
        ready: list[float] = self._table.ready_s[i:j].tolist()  # clamped at now
        return sum(max(ready) - r for r in ready) + b.detour_s

    def bundle(self, i: int, j: int) -> Bundle:
        return self.bundles([(i, j)])[0]

    def bundles(self, runs: Sequence[tuple[int, int]]) -> list[Bundle]:
        """The bundles of runs ``ordered[i:j]``, in the order given."""
        out: list[Bundle | None] = [None] * len(runs)
        for s, trials in self._trials.items():
            at = [k for k, (i, j) in enumerate(runs) if j - i == s]
            made = to_bundles(self._table, trials, [self._row[s][runs[k][0]] for k in at])
            for k, b in zip(at, made, strict=True):
                out[k] = b
        for k, (i, j) in enumerate(runs):
            if out[k] is None:
                if (i, j) not in self._long:
                    self._long[i, j] = make_bundle(self._table.orders[i:j], **self._kw)
                out[k] = self._long[i, j]
        return [b for b in out if b is not None]
