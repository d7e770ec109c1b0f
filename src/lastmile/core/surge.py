"""Surge from supply and demand per H3 cell, smoothed over rounds so it does not flap (pure).

A round counts open orders by drop-off cell and available couriers by position cell
(``counts_by_cell``), turns them into a raw ratio per cell over the cell and its ring of
``surge_ring_k`` neighbours (``neighbourhood_ratios``), and advances the previous state
(``advance``): the ratio is smoothed exponentially and the multiplier it implies moves by
at most ``surge_max_step`` per round. A quote reads the multiplier of its drop-off's cell
(``multiplier_at``). The state is plain data: the app layer keeps it per region and passes
it in; nothing here reads a clock or a store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import h3

from lastmile.core.geo import Point
from lastmile.core.pricing import PricingPolicy

ONE = Decimal("1.00")
# Cells whose smoothed ratio has decayed below this and whose multiplier is back at 1 are
# forgotten: the state holds only cells with something going on.
_FORGET_RATIO = 0.01


@dataclass(frozen=True, slots=True, kw_only=True)
class CellSurge:
    """A cell's smoothed ratio (open orders per available courier) and its multiplier."""

    ratio: float
    multiplier: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class SurgeState:
    """One region's surge after the round at ``at`` (seconds since the epoch)."""

    at: float
    cells: tuple[tuple[str, CellSurge], ...] = ()

    def cell(self, cell: str) -> CellSurge | None:
        return dict(self.cells).get(cell)


def cell_of(point: Point, resolution: int) -> str:
    """The H3 cell (hex string) holding ``point`` at ``resolution`` (0-15)."""
    return str(h3.latlng_to_cell(point.lat, point.lng, resolution))


def ring_of(cell: str, k: int) -> tuple[str, ...]:
    """The cell and every cell within ``k`` steps of it (``k`` = 0: the cell alone)."""
    return tuple(sorted(str(c) for c in h3.grid_disk(cell, k)))


def counts_by_cell(points: Iterable[Point], resolution: int) -> dict[str, int]:
    """How many of ``points`` fall in each H3 cell."""
    return dict(Counter(cell_of(p, resolution) for p in points))


def neighbourhood_ratios(demand: Mapping[str, int], supply: Mapping[str, int], *,
                         k: int, no_courier_ratio: float = 0.0) -> dict[str, float]:
    """Raw open orders per available courier for every cell within ``k`` of some demand.

    A cell's ratio sums demand and supply over its ring of neighbours (``ring_of``), so a
    drop-off on a cell border sees the couriers next door. Orders waiting with no courier
    in the ring is maximal pressure (the region-wide rule, ``pricing.surge_multiplier``):
    the ratio is then at least ``no_courier_ratio`` (``saturation_ratio``: where surge
    reaches its cap), and finite, so smoothing can decay it. Cells without demand nearby
    are absent (ratio 0).
    """
    cells = {c for d, n in demand.items() if n > 0 for c in ring_of(d, k)}
    out = {}
    for cell in sorted(cells):
        ring = ring_of(cell, k)
        orders = sum(demand.get(c, 0) for c in ring)
        couriers = sum(supply.get(c, 0) for c in ring)
        out[cell] = orders / couriers if couriers else max(float(orders), no_courier_ratio)
    return out


def saturation_ratio(policy: PricingPolicy) -> float:
    """The ratio at which ``target_multiplier`` reaches ``surge_cap`` (the threshold when
    surge has no slope: no ratio raises it)."""
    if policy.surge_slope == 0:
        return policy.surge_threshold
    return policy.surge_threshold + (policy.surge_cap - 1.0) / policy.surge_slope


def target_multiplier(ratio: float, policy: PricingPolicy) -> Decimal:
    """1.00 up to ``surge_threshold`` orders per courier, then ``surge_slope`` per unit of
    ratio above it, floored to 0.25 steps, at most ``surge_cap``."""
    raw = 1.0 + policy.surge_slope * max(0.0, ratio - policy.surge_threshold)
    raw = min(raw, policy.surge_cap)
    return Decimal(str(int(raw * 4) / 4)).quantize(Decimal("0.01"))


def step_towards(previous: Decimal, target: Decimal, max_step: Decimal) -> Decimal:
    """``target``, or ``previous`` moved by at most ``max_step`` towards it (to the cent of
    a multiplier, rounded towards ``previous`` so the bound always holds)."""
    delta = max(-max_step, min(max_step, target - previous))
    return previous + delta.quantize(Decimal("0.01"), rounding=ROUND_DOWN)


def advance(previous: SurgeState | None, raw: Mapping[str, float], *, at: float,
            policy: PricingPolicy) -> SurgeState:
    """The next round: per cell, ``ratio += surge_smoothing * (raw - ratio)`` (exponential
    smoothing; a cell absent from ``raw`` has raw ratio 0, so an old peak decays), then the
    multiplier steps towards ``target_multiplier(ratio)`` by at most ``surge_max_step``.

    A cell seen for the first time starts from ratio 0 and multiplier 1.00, so a sudden
    rush raises the fee over several rounds, never at once. Cells back at rest are dropped.
    """
    before = dict(previous.cells) if previous else {}
    rest = CellSurge(ratio=0.0, multiplier=ONE)
    max_step = Decimal(str(policy.surge_max_step))
    cells = []
    for cell in sorted(set(before) | set(raw)):
        old = before.get(cell, rest)
        ratio = old.ratio + policy.surge_smoothing * (raw.get(cell, 0.0) - old.ratio)
        multiplier = step_towards(old.multiplier, target_multiplier(ratio, policy), max_step)
        if ratio < _FORGET_RATIO and multiplier == ONE:
            continue
        cells.append((cell, CellSurge(ratio=ratio, multiplier=multiplier)))
    return SurgeState(at=at, cells=tuple(cells))


def multiplier_at(state: SurgeState | None, cell: str) -> Decimal:
    """The surge multiplier a quote to ``cell`` pays (1.00 where nothing is going on)."""
    found = state.cell(cell) if state else None
    return found.multiplier if found else ONE
