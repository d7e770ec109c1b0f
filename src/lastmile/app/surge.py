"""Surge rounds: count supply and demand per H3 cell, advance the region's state (core.surge).

A quote asks ``surge_for`` the multiplier of its drop-off's cell. The region's state is
advanced lazily: the first quote after ``surge_round_s`` runs the round (under the board's
lock, so concurrent quotes run one round, not several), every other quote reads the state
as it is. So the surge a consumer sees moves once a round at most, by at most
``surge_max_step``, however often they ask.

Counts: open orders (placed or waiting for a courier) by drop-off cell, from the unit of
work; available couriers by position cell, from the live store (idle and fresh), or,
without one, from the couriers' stored locations (idle couriers on shift).
"""

from __future__ import annotations

from decimal import Decimal

from lastmile.app.context import Services
from lastmile.app.ports import UnitOfWork
from lastmile.app.surge_board import Indexed
from lastmile.app.tenancy import current_tenant
from lastmile.core.geo import Point
from lastmile.core.model import CourierStatus
from lastmile.core.orders import AWAITING_COURIER, OrderStatus
from lastmile.core.pricing import PricingPolicy
from lastmile.core.surge import (
    SurgeState,
    advance,
    cell_of,
    counts_by_cell,
    neighbourhood_ratios,
    saturation_ratio,
)

# A round reads at most this many open orders (the oldest): enough for any city's backlog,
# bounded so a runaway backlog cannot make one quote slow.
MAX_ROUND_ORDERS = 5_000
WAITING = tuple(sorted(AWAITING_COURIER | {OrderStatus.PLACED}))


def cell_counts(uow: UnitOfWork, services: Services, region_id: str, *, now: float,
                resolution: int) -> tuple[dict[str, int], dict[str, int]]:
    """(open orders by drop-off cell, available couriers by position cell) of the region."""
    dropoffs = uow.orders.dropoffs(region_id, statuses=WAITING, limit=MAX_ROUND_ORDERS)
    demand = counts_by_cell(dropoffs, resolution)
    points: list[Point]
    if services.live is not None:
        points = [c.point for c in services.live.all_in_region(region_id, now=now)
                  if c.status == "idle"]
    else:
        points = [c.location for c in uow.couriers.list_region(region_id, on_shift_only=True)
                  if c.status is CourierStatus.IDLE and c.location is not None and not c.banned]
    return demand, counts_by_cell(points, resolution)


def run_round(uow: UnitOfWork, services: Services, region_id: str, policy: PricingPolicy, *,
              previous: SurgeState | None, now: float) -> SurgeState:
    """The region's next surge state from the counts now."""
    demand, supply = cell_counts(uow, services, region_id, now=now,
                                 resolution=policy.surge_h3_resolution)
    raw = neighbourhood_ratios(demand, supply, k=policy.surge_ring_k,
                               no_courier_ratio=saturation_ratio(policy))
    return advance(previous, raw, at=now, policy=policy)


def region_surge(uow: UnitOfWork, services: Services, region_id: str,
                 policy: PricingPolicy) -> Indexed:
    """The region's surge state, advanced first when its last round is ``surge_round_s`` old."""
    board, tenant, now = services.surge, current_tenant(), services.clock.now()
    current = board.get(tenant, region_id)
    if current is not None and now - current.state.at < policy.surge_round_s:
        return current
    with board.lock:
        current = board.get(tenant, region_id)  # another quote may have just run the round
        if current is not None and now - current.state.at < policy.surge_round_s:
            return current
        state = run_round(uow, services, region_id, policy, now=now,
                          previous=current.state if current else None)
        return board.put(tenant, region_id, state)


def surge_for(uow: UnitOfWork, services: Services, region_id: str, dropoff: Point,
              policy: PricingPolicy) -> Decimal:
    """The surge multiplier of ``dropoff``'s cell in the region now."""
    cell = cell_of(dropoff, policy.surge_h3_resolution)
    return region_surge(uow, services, region_id, policy).multiplier(cell)
