"""``heuristic-3``: the courier delay from a small simulation of the courier queue.

``heuristic-2`` (``core.eta.engine``) times the courier from counts (orders waiting, idle
and busy couriers) by Little's law. At quote time the platform knows much more: where each
courier is and on what vehicle, when and where each busy courier frees up (the end of its
committed route), which orders are already waiting and when their food will be ready. This
model plays that queue forward the way the dispatcher works it, greedily:

- every order (the waiting ones and the new one) in ready-time order takes the courier
  the dispatcher ranks first: the earliest arrival at the merchant, from where and when
  the courier is free, at the dispatcher's one travel speed (``dispatch_speed_mps``;
  the live dispatcher does not know vehicles);
- that courier really arrives at its own vehicle's speed, ``assign_lag_s`` after it is
  free (the dispatch round's cadence and the offer's acceptance), picks up at
  ``max(arrival, ready) + pickup handover``, rides to the door at its speed, hands over,
  and is free there;
- an order of a merchant whose food is ready by ``bundle_gap_s`` after a courier reaches
  that merchant for another order joins that courier's bundle (the dispatcher bundles
  them; up to ``max_bundle`` orders): it is picked up with it and delivered after it.

The point is the new order's door time. In a backlog (more orders waiting than
``max_backlog`` per courier) the model ``defers`` to ``heuristic-2``. The 80% interval comes from calibrated ratios of
realised to predicted time (``bench/eta_calibration.py --model heuristic-3``), one pair when
the food is the later of the two at the merchant (``food_p10`` / ``food_p90``), one when the
courier is (``courier_p10`` / ``courier_p90``): a queue's timing is less certain than a
kitchen's.

Pure: planar metres (the app projects lat/lng around the region's centre) and epoch
seconds in, an ``EtaEstimate`` out. Cost: O(orders x couriers) numpy work per quote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lastmile.core.eta import travel
from lastmile.core.eta.features import EtaEstimate


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCourier:
    """A courier on shift as the queue sees it: where and when it is next free (its
    committed route's end, or now where it is), and its vehicle's speed."""

    x_m: float
    y_m: float
    free_s: float
    speed_mps: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed_mps) and self.speed_mps > 0):
            raise ValueError(f"speed_mps must be a finite number > 0 (got {self.speed_mps})")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOrder:
    """An order no courier holds yet: its merchant (``merchant_id``, for bundles), pickup
    and drop-off (planar metres) and when its food is expected ready."""

    merchant_id: str
    pickup_x_m: float
    pickup_y_m: float
    dropoff_x_m: float
    dropoff_y_m: float
    ready_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueState:
    """A region at quote time: the couriers on shift and the orders waiting for one."""

    now_s: float
    couriers: tuple[QueueCourier, ...]
    waiting: tuple[QueueOrder, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueParams:
    """``heuristic-3``'s constants: tuned on lunch and black-friday-lunch seeds 1-12
    (docs/eta.md, "heuristic-3")."""

    name: str = "heuristic-3"
    road_factor: float = travel.ROAD_FACTOR
    dispatch_speed_mps: float = travel.DEFAULT_SPEED_MPS
    """The one speed the dispatcher ranks couriers at (``app.dispatching.LiveTravel``)."""
    pickup_service_s: float = travel.PICKUP_HANDOVER_S
    dropoff_service_s: float = travel.DROPOFF_HANDOVER_S
    assign_lag_s: float = 120.0
    """From a courier being free to setting off: half a dispatch round and the offer."""
    bundle_gap_s: float = 300.0
    """An order of a merchant whose food is ready by this long after a courier reaches the
    merchant for another joins that courier's bundle (0: never). Food ready long ago counts
    as ready now (the dispatcher's ``bundle_from_now``), so orders that waited bundle."""
    queue_drain: float = 0.25
    """The share of an order's courier time, from free to its door, that keeps its courier
    from the orders behind it in the queue: below 1, a queue drains faster than one order
    per whole trip (bundles across rounds, short trips first when couriers are short:
    ``heuristic-2``'s short ``courier_cycle_s`` says the same). The new order's own door is
    its whole trip."""
    max_bundle: int = 4
    """Orders in one bundle at most (the dispatcher's ``max_bundle_size``)."""
    ride_pool: int = 4
    """The new order's ride is timed at the mean pace (seconds per metre) of the couriers
    the dispatcher ranks first for it, this many: which of them takes it is uncertain (the
    round matches all orders at once), so its vehicle is too."""
    no_courier_s: float = 1_800.0
    """The courier delay when no courier is on shift at all."""
    max_backlog: float = 1.0
    """More orders waiting than this many per courier on shift: a backlog, which the greedy
    play times poorly (black-friday-lunch's tuning seeds: twice the realised wait, and still
    a third over at ``queue_drain`` 0.25); ``defers`` says so and ``heuristic-2`` (Little's
    law on the counts, fitted on that regime) answers instead."""
    food_p10: float = 0.78
    food_p90: float = 1.32
    courier_p10: float = 0.75
    courier_p90: float = 1.27

    def __post_init__(self) -> None:
        for name in ("road_factor", "dispatch_speed_mps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0 (got {value})")
        for name in ("pickup_service_s", "dropoff_service_s", "assign_lag_s", "bundle_gap_s",
                     "no_courier_s", "max_backlog"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 (got {value})")
        if not 0 < self.queue_drain <= 1:
            raise ValueError(f"queue_drain must be in (0, 1] (got {self.queue_drain})")
        if self.max_bundle < 1:
            raise ValueError(f"max_bundle must be >= 1 (got {self.max_bundle})")
        if self.ride_pool < 1:
            raise ValueError(f"ride_pool must be >= 1 (got {self.ride_pool})")
        for low, high in ((self.food_p10, self.food_p90), (self.courier_p10, self.courier_p90)):
            if not (0 < low <= 1 <= high and math.isfinite(high)):
                raise ValueError(f"interval ratios must satisfy 0 < p10 <= 1 <= p90 (got "
                                 f"{low} and {high})")


DEFAULT_QUEUE = QueueParams()


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuePlan:
    """What the queue gives the new order (seconds from ``now_s``)."""

    food_s: float
    """Until its food is ready."""
    courier_s: float
    """Until its courier is at the merchant."""
    door_s: float
    """Until the handover at the door: the point."""
    courier_bound: bool
    """The courier, not the food, is the later of the two at the merchant."""


def plan(state: QueueState, order: QueueOrder, params: QueueParams = DEFAULT_QUEUE
         ) -> QueuePlan:
    """Play the queue (module docstring) with ``order`` added; its times."""
    now = state.now_s
    food_s = max(0.0, order.ready_s - now)
    ride = math.hypot(order.dropoff_x_m - order.pickup_x_m,
                      order.dropoff_y_m - order.pickup_y_m) * params.road_factor
    if not state.couriers:
        courier_s = max(food_s, params.no_courier_s)
        door = courier_s + params.pickup_service_s + ride / params.dispatch_speed_mps \
            + params.dropoff_service_s
        return QueuePlan(food_s=food_s, courier_s=courier_s, door_s=door, courier_bound=True)
    cs = state.couriers
    x = np.array([c.x_m for c in cs])
    y = np.array([c.y_m for c in cs])
    free = np.maximum(np.array([c.free_s for c in cs]), now)
    speed = np.array([c.speed_mps for c in cs])
    last_door = free.copy()  # each courier's last door on its route (free: drained, below)
    # Bundles being collected: merchant -> (courier index, pickup time, orders in it).
    open_bundle: dict[str, tuple[int, float, int]] = {}
    ahead = sorted(state.waiting, key=lambda o: o.ready_s)
    queue = [*[o for o in ahead if o.ready_s <= order.ready_s], order,
             *[o for o in ahead if o.ready_s > order.ready_s]]
    rf = params.road_factor
    for o in queue:
        held = open_bundle.get(o.merchant_id) if params.bundle_gap_s > 0 else None
        if (held is not None and held[2] < params.max_bundle
                and o.ready_s <= held[1] - params.pickup_service_s + params.bundle_gap_s):
            i, collected, size = held
            pickup_at = max(collected, o.ready_s + params.pickup_service_s)
            # Delivered after the bundle's earlier doors, which a later pickup delays as
            # much: from the courier's last drop-off.
            leg = math.hypot(o.dropoff_x_m - x[i], o.dropoff_y_m - y[i]) * rf
            door = (last_door[i] + (pickup_at - collected) + leg / speed[i]
                    + params.dropoff_service_s)
            arrival = pickup_at - params.pickup_service_s
        else:
            dist = np.hypot(x - o.pickup_x_m, y - o.pickup_y_m) * rf
            rank = free + dist / params.dispatch_speed_mps
            i = int(np.argmin(rank))
            open_bundle = {m: b for m, b in open_bundle.items() if b[0] != i}
            arrival = float(free[i] + params.assign_lag_s + dist[i] / speed[i])
            pickup_at = max(arrival, o.ready_s) + params.pickup_service_s
            leg = math.hypot(o.dropoff_x_m - o.pickup_x_m, o.dropoff_y_m - o.pickup_y_m) * rf
            pace = 1.0 / speed[i]
            if o is order and params.ride_pool > 1:
                first = np.argsort(rank, kind="stable")[:params.ride_pool]
                pace = float(np.mean(1.0 / speed[first]))
            door = pickup_at + leg * pace + params.dropoff_service_s
            size = 0
        open_bundle[o.merchant_id] = (i, pickup_at, size + 1)
        held_from = free[i]
        free[i] = held_from + params.queue_drain * (door - held_from)
        last_door[i] = door
        x[i], y[i] = o.dropoff_x_m, o.dropoff_y_m
        if o is order:
            door = float(door)
            courier_s = max(0.0, float(arrival) - now)
            return QueuePlan(food_s=food_s, courier_s=courier_s, door_s=float(door - now),
                             courier_bound=courier_s > food_s)
    raise AssertionError("the new order is in the queue")  # pragma: no cover


def defers(state: QueueState, params: QueueParams = DEFAULT_QUEUE) -> bool:
    """True when the region has a backlog (``max_backlog``): the caller serves
    ``heuristic-2`` instead."""
    return len(state.waiting) > params.max_backlog * len(state.couriers)


def queue_estimate(state: QueueState, order: QueueOrder,
                   params: QueueParams = DEFAULT_QUEUE) -> EtaEstimate:
    """``heuristic-3``'s estimate for ``order`` at ``state.now_s``: the queue's door time
    and the calibrated interval around it (module docstring)."""
    p = plan(state, order, params)
    low, high = ((params.courier_p10, params.courier_p90) if p.courier_bound
                 else (params.food_p10, params.food_p90))
    door = float(p.door_s)
    return EtaEstimate(point_s=door, p10_s=door * low, p90_s=door * high, model=params.name)
