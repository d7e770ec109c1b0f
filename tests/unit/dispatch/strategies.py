"""Hypothesis strategies for dispatch snapshots that make the engine decide something.

A snapshot drawn uniformly (any time, any courier state) mostly holds couriers off
shift or busy and food ready in an hour, so the plan is empty and an invariant holds
vacuously. These draw a lunch rush instead: orders placed in the last half hour at a
few merchants, ready around now, couriers mostly idle and on shift near them, and a
few edge cases in every draw (a courier busy a while longer, a shift ending soon, an
order ready late). ``test_dispatch_properties`` checks they yield assignments, bundles
and prepositions most of the time.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from lastmile.core.dispatch import (
    CommittedAssignment,
    CourierState,
    Merchant,
    OpenOrder,
    Snapshot,
    TravelModel,
)

MIN = 60.0
# Four merchants 1.5 km apart in a 6 km x 4 km town (metres).
MERCHANTS = {f"r{i}": (1000.0 + i * 1500.0, 1000.0 + (i % 2) * 2000.0) for i in range(4)}
TRAVEL = TravelModel(metres_per_step=320.0, step_s=60.0)  # ~19 km/h, one-minute steps


def _near(draw: st.DrawFn, x: float, y: float, radius_m: float) -> tuple[float, float]:
    d = st.floats(min_value=-radius_m, max_value=radius_m, allow_nan=False)
    return x + draw(d), y + draw(d)


@st.composite
def open_orders(draw: st.DrawFn, now: float, n: int, merchants: list[str]) -> list[OpenOrder]:
    orders = []
    for i in range(n):
        m = draw(st.sampled_from(merchants))
        placed = now - draw(st.integers(0, 30)) * MIN
        # Mostly ready between 15 min ago and 2 min from now; the others up to an
        # hour on (left for a later round by the optimised policy).
        late = draw(st.integers(0, 9)) >= 8
        ready = max(placed, now + draw(st.integers(3, 60) if late else st.integers(-15, 2)) * MIN)
        dx, dy = _near(draw, *MERCHANTS[m], 3000.0)
        orders.append(OpenOrder(order_id=f"o{i}", merchant_id=m, placed_s=placed, ready_s=ready,
                                pickup_x_m=MERCHANTS[m][0], pickup_y_m=MERCHANTS[m][1],
                                dropoff_x_m=dx, dropoff_y_m=dy))
    return orders


@st.composite
def couriers(draw: st.DrawFn, now: float, n: int) -> list[CourierState]:
    out = []
    for j in range(n):
        x, y = _near(draw, 3000.0, 2000.0, 3000.0)
        # Mostly idle for up to 20 min; the others busy for up to 30 min more.
        busy = draw(st.integers(0, 9)) >= 8
        free = now + draw(st.integers(1, 30) if busy else st.integers(-20, 0)) * MIN
        start = now - draw(st.integers(0, 180)) * MIN
        # Mostly with hours of shift left; the others end within the quarter hour.
        ending = draw(st.integers(0, 9)) >= 8
        end = now + draw(st.integers(1, 15) if ending else st.integers(60, 240)) * MIN
        out.append(CourierState(courier_id=f"c{j}", x_m=x, y_m=y, free_s=free,
                                shift_start_s=start, shift_end_s=end))
    return out


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """A rush: 1-16 orders at 2-4 merchants, 2-6 couriers, demand weights 0-3."""
    now = draw(st.integers(60, 180)) * MIN
    merchants = sorted(MERCHANTS)[: draw(st.integers(2, 4))]
    orders = draw(open_orders(now, draw(st.integers(1, 16)), merchants))
    riders = draw(couriers(now, draw(st.integers(2, 6))))
    weights = tuple(
        Merchant(merchant_id=k, x_m=x, y_m=y, demand_weight=draw(st.integers(0, 3)))
        for k, (x, y) in sorted(MERCHANTS.items())
    )
    return Snapshot(now_s=now, orders=tuple(orders), couriers=tuple(riders), travel=TRAVEL,
                    pickup_service_s=4 * MIN, dropoff_service_s=4 * MIN, merchants=weights)


@st.composite
def snapshots_with_waiting_couriers(draw: st.DrawFn) -> Snapshot:
    """Rush snapshots where 1-3 more couriers wait at the merchant of their committed
    bundle (the case for assignment updates)."""
    snap = draw(snapshots())
    committed, riders = [], list(snap.couriers)
    for j in range(draw(st.integers(1, 3))):
        m = draw(st.sampled_from(sorted({o.merchant_id for o in snap.orders})))
        arrival = snap.now_s - draw(st.integers(0, 10)) * MIN
        ready = arrival + draw(st.integers(-10, 20)) * MIN
        pickup = max(ready, arrival + 2 * MIN, snap.now_s)
        mx, my = MERCHANTS[m]
        dx, dy = _near(draw, mx, my, 3000.0)
        held = OpenOrder(order_id=f"held{j}", merchant_id=m, placed_s=min(ready, snap.now_s),
                         ready_s=ready, pickup_x_m=mx, pickup_y_m=my, dropoff_x_m=dx,
                         dropoff_y_m=dy)
        cid = f"w{j}"
        riders.append(CourierState(courier_id=cid, x_m=mx, y_m=my, free_s=pickup + 30 * MIN,
                                   shift_start_s=0.0, at_merchant_id=m,
                                   shift_end_s=pickup + draw(st.integers(0, 40)) * MIN))
        committed.append(CommittedAssignment(courier_id=cid, merchant_id=m, orders=(held,),
                                             arrival_s=arrival, pickup_s=pickup))
    return replace(snap, couriers=tuple(riders), committed=tuple(committed))
