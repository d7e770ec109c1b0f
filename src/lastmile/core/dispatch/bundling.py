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
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import overload

import numpy as np
from numpy.typing import NDArray

from lastmile.core.dispatch.costing import BundleArrays, bundle_arrays
from lastmile.core.dispatch.model import Bundle, OpenOrder, TravelModel
from lastmile.core.dispatch.ready_order import by_ready_time
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

__all__ = ["Bundles", "bundle_excess_s", "bundle_set", "bundle_size_cap", "generate_bundles",
           "make_bundle", "sequence_route"]


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

    No orders give no bundles. ``bundle_set``'s bundles, every one built.
    """
    return tuple(bundle_set(orders, travel=travel, pickup_service_s=pickup_service_s,
                            dropoff_service_s=dropoff_service_s, size_cap=size_cap,
                            max_ready_gap_s=max_ready_gap_s, max_extra_delay_s=max_extra_delay_s,
                            now_s=now_s))


def bundle_set(
    orders: Sequence[OpenOrder],
    *,
    travel: TravelModel,
    pickup_service_s: float,
    dropoff_service_s: float,
    size_cap: int,
    max_ready_gap_s: float,
    max_extra_delay_s: float,
    now_s: float | None = None,
) -> Bundles:
    """``generate_bundles``'s bundles as a ``Bundles`` sequence, which builds a ``Bundle``
    only when one is asked for (a city round matches and commits a fraction of them).

    A merchant's bundle is always a run of consecutive orders in its ready-time order, so
    every run the rule could try (up to ``EXACT_UP_TO`` orders) is sequenced up front in
    one batch (``sequencing.evaluate``) and the rule then only compares their excess;
    longer runs (a cap above 4) are built one by one.
    """
    if not orders:
        return Bundles(None, [])
    # By merchant (merchant ids in sorted order), each by (ready time, order id).
    ordered = by_ready_time(orders, by_merchant=True)
    bounds = [0, *(i for i in range(1, len(ordered))
                   if ordered[i].merchant_id != ordered[i - 1].merchant_id), len(ordered)]
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
    return Bundles(runs, chosen)


class Bundles(Sequence[Bundle]):
    """A round's bundles (runs ``ordered[i:j]`` of ``bundle_set``), in output order: their
    cost arrays at once (``arrays``), and ``Bundle`` values built when asked for, in batches
    (``take``), each equal to the one ``make_bundle`` builds."""

    def __init__(self, runs: _Runs | None, chosen: Sequence[tuple[int, int]]) -> None:
        self._runs, self._chosen = runs, list(chosen)
        self._made: dict[int, Bundle] = {}

    def __len__(self) -> int:
        return len(self._chosen)

    @overload
    def __getitem__(self, j: int) -> Bundle: ...
    @overload
    def __getitem__(self, j: slice) -> tuple[Bundle, ...]: ...
    def __getitem__(self, j: int | slice) -> Bundle | tuple[Bundle, ...]:
        if isinstance(j, slice):
            return tuple(self.take(range(len(self))[j]))
        if not -len(self) <= j < len(self):
            raise IndexError(f"bundle index {j} out of range for {len(self)} bundles")
        return self.take([j % len(self)])[0]

    def __iter__(self) -> Iterator[Bundle]:
        return iter(self.take(range(len(self))))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to tuples, mutable cache

    def take(self, ix: Sequence[int]) -> list[Bundle]:
        """The bundles at indices ``ix`` (each in ``range(len(self))``), in that order."""
        want = [j for j in dict.fromkeys(ix) if j not in self._made]
        if want and self._runs is not None:
            made = self._runs.bundles([self._chosen[j] for j in want])
            self._made.update(zip(want, made, strict=True))
        return [self._made[j] for j in ix]

    def orders_of(self, ix: Sequence[int]) -> list[tuple[str, tuple[str, ...]]]:
        """(merchant id, order ids in drop-off sequence) of the bundles at ``ix``: what an
        assignment names, without building the ``Bundle``."""
        if self._runs is None:
            return []
        return self._runs.orders_of([self._chosen[j] for j in ix])

    def arrays(self, now_s: float) -> BundleArrays:
        """``costing.bundle_arrays`` of these bundles, equal to it bit for bit, from the
        trial arrays (no ``Bundle`` built)."""
        if self._runs is None:
            return bundle_arrays((), now_s)
        return self._runs.arrays(self._chosen, now_s)


class _Runs:
    """Every run ``ordered[i:j]`` of one merchant of at most ``min(cap, EXACT_UP_TO)``
    orders, sequenced in one batch per length; longer runs sequenced when asked."""

    def __init__(self, table: OrderTable, merchant: NDArray[np.intp], cap: int, *,
                 travel: TravelModel, pickup_service_s: float, dropoff_service_s: float) -> None:
        self._table = table
        real = np.fromiter((o.ready_s for o in table.orders), np.float64, len(table.orders))
        self._clamped = bool(np.any(real != table.ready_s))
        # The orders' own ready times: bundles and their cost arrays keep them (only the
        # bundling rule's comparisons see the times clamped at now).
        self._real_ready = real if self._clamped else table.ready_s
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

    def orders_of(self, runs: Sequence[tuple[int, int]]) -> list[tuple[str, tuple[str, ...]]]:
        """(merchant id, order ids in drop-off sequence) of the bundles of ``runs``: their
        trials' sequences (longer runs through their ``Bundle``)."""
        out: list[tuple[str, tuple[str, ...]]] = [("", ())] * len(runs)
        orders = self._table.orders
        for s, trials in self._trials.items():
            at = [k for k, (i, j) in enumerate(runs) if j - i == s]
            rows = np.asarray([self._row[s][runs[k][0]] for k in at], dtype=np.intp)
            for k, seq in zip(at, trials.seq[rows].tolist(), strict=True):
                out[k] = (orders[seq[0]].merchant_id, tuple(orders[i].order_id for i in seq))
        for k, (i, j) in enumerate(runs):
            if j - i > EXACT_UP_TO:
                b = self.bundle(i, j)
                out[k] = (b.merchant_id, b.order_ids)
        return out

    def arrays(self, runs: Sequence[tuple[int, int]], now_s: float) -> BundleArrays:
        """``bundle_arrays`` of the bundles of ``runs``: each length's trials give theirs at
        once (the sums add up in drop-off order from 0, as ``bundle_arrays``' ``sum``
        does); longer runs through their ``Bundle``."""
        m = len(runs)
        start = np.fromiter((i for i, _ in runs), np.intp, m)
        size = np.fromiter((j - i for i, j in runs), np.intp, m)
        cols = np.empty((8, m))
        cols[6] = np.inf  # latest_pickup_s: no stacked bundle here
        t, ready_s = self._table, self._real_ready
        for s, trials in self._trials.items():
            at = np.flatnonzero(size == s)
            row = np.asarray(self._row[s], dtype=np.intp)[start[at]]
            seq = trials.seq[row]
            first = seq[:, 0]
            total, waiting = np.zeros(len(at)), np.zeros(len(at))
            latest = ready_s[first]
            for pos in range(s):
                r = ready_s[seq[:, pos]]
                total = total + r
                late = now_s - r
                waiting = waiting + np.where(late > 0.0, late, 0.0)
                latest = np.where(r > latest, r, latest)
            cols[0, at], cols[1, at] = t.px[first], t.py[first]
            cols[2, at], cols[3, at] = latest, total
            cols[4, at], cols[5, at] = waiting, trials.detour_s[row]
            cols[7, at] = trials.last_leg_end_s[row]
        rest = np.flatnonzero(size > EXACT_UP_TO) if self._trials else np.arange(m)
        if rest.size:
            b = bundle_arrays(self.bundles([runs[k] for k in rest.tolist()]), now_s)
            cols[:, rest] = np.stack([b.x_m, b.y_m, b.ready_s, b.sum_ready_s, b.waiting_s,
                                      b.detour_s, b.latest_pickup_s, b.busy_after_s])
        return BundleArrays(x_m=cols[0], y_m=cols[1], ready_s=cols[2],
                            size=size.astype(np.float64), sum_ready_s=cols[3],
                            waiting_s=cols[4], detour_s=cols[5], latest_pickup_s=cols[6],
                            busy_after_s=cols[7])
