"""What the simulated world records: its settings, orders, couriers and the run's log.

Shared by the world (``world.py``: consumers, merchants, the dispatch tick), the
couriers (``couriers.py``), the KPIs and the plots, so that none of them imports
another's behaviour. Counts the samples need (couriers on shift and holding
orders, open and delivered orders) are kept by the log as things change, so a
sample costs O(1) however large the city.
"""

from __future__ import annotations

import enum
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from lastmile.core.geo import Point
from lastmile.sim.city import SimCourierSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class WorldConfig:
    dispatch_every_s: float = 30.0
    ping_every_s: float = 60.0
    sample_every_s: float = 300.0
    accept_p: float = 0.9
    respond_s: tuple[float, float] = (3.0, 20.0)
    confirm_s: tuple[float, float] = (20.0, 120.0)
    pickup_service_s: float = 120.0
    dropoff_service_s: float = 120.0
    road_factor: float = 1.3
    travel_noise: float = 0.15  # log-normal sigma on each leg (lights, parking)
    patience_s: float = 900.0  # consumers cancel this long past the quoted high ETA
    base_conversion: float = 0.92
    merchant_radius_m: float = 4_000.0
    # Hidden individual propensities (sim.propensity) instead of accept_p and respond_s.
    propensities: bool = False
    # Couriers riding to a door answer offers as they come (the work queues after their last
    # door), as a courier app shows them; off: they see an offer only once idle again.
    offers_on_the_go: bool = False


class Phase(enum.Enum):
    """Where a courier is in its shift (its process's position, for those who watch it)."""

    OFF = "off"  # before or after its shift
    IDLE = "idle"  # on shift, waiting for an offer
    DECIDING = "deciding"  # looking at an offer
    TO_PICKUP = "to_pickup"
    AT_PICKUP = "at_pickup"  # at the merchant, waiting for the food
    TO_DROPOFF = "to_dropoff"
    AT_DROPOFF = "at_dropoff"  # at the door, handing over

    @property
    def on_shift(self) -> bool:
        return self is not Phase.OFF

    @property
    def holding(self) -> bool:
        """Holding orders (accepted, not yet all delivered): the utilisation's busy time."""
        return self in _HOLDING


_HOLDING = frozenset({Phase.TO_PICKUP, Phase.AT_PICKUP, Phase.TO_DROPOFF, Phase.AT_DROPOFF})


@dataclass(slots=True, kw_only=True)
class OrderRecord:
    id: str
    region_id: str
    merchant_id: str
    consumer_id: str
    dropoff: Point
    placed_at: float
    eta_expected_at: float
    eta_high_at: float
    eta_low_at: float | None = None  # the window's start (coverage of the 80% interval)
    fees_minor: int
    pickup: Point | None = None  # the merchant's location (courier pay: trip distance)
    ready_at: float | None = None
    picked_up_at: float | None = None
    delivered_at: float | None = None
    cancelled_at: float | None = None
    courier_id: str | None = None

    @property
    def open(self) -> bool:
        return self.picked_up_at is None and self.cancelled_at is None


@dataclass(slots=True, kw_only=True)
class CourierRun:
    """One simulated courier: its phase, plan and position, and its time on shift / busy."""

    spec: SimCourierSpec
    pos: Point
    phase: Phase = Phase.OFF
    orders: list[str] = field(default_factory=list)  # held, in drop-off order
    leg: tuple[Point, Point, float, float] | None = None  # from, to, depart, arrive
    busy_since: float | None = None
    busy_s: float = 0.0
    shift_since: float | None = None
    shift_s: float = 0.0
    delivered: int = 0
    withdrawn: int = 0  # orders it held that were moved to another courier (reassignment)
    moved_in: int = 0  # orders it took over from another courier

    def where(self, t: float) -> Point:
        if self.leg is None:
            return self.pos
        a, b, t0, t1 = self.leg
        f = 1.0 if t >= t1 or t1 <= t0 else max(0.0, (t - t0) / (t1 - t0))
        return Point(lat=a.lat + (b.lat - a.lat) * f, lng=a.lng + (b.lng - a.lng) * f)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    t: float
    on_shift: int
    busy: int
    open_orders: int
    delivered: int


@dataclass(slots=True, kw_only=True)
class WorldLog:
    start: float
    end: float
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    couriers: dict[str, CourierRun] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    quotes: int = 0
    lost_quotes: int = 0
    refusals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    phases: Counter[Phase] = field(default_factory=Counter)  # couriers per phase
    idle: set[str] = field(default_factory=set)  # couriers in Phase.IDLE
    open_orders: int = 0  # placed, neither picked up nor cancelled
    delivered: int = 0

    # -- couriers ----------------------------------------------------------------------
    def enrol(self, run: CourierRun) -> None:
        self.couriers[run.spec.id] = run
        self.phases[run.phase] += 1

    def move(self, run: CourierRun, phase: Phase, now: float) -> None:
        """``run`` enters ``phase`` at ``now``: the only place its phase, its time on shift
        and its busy time change."""
        old = run.phase
        if old is phase:
            return
        self.phases[old] -= 1
        self.phases[phase] += 1
        if old is Phase.IDLE:
            self.idle.discard(run.spec.id)
        elif phase is Phase.IDLE:
            self.idle.add(run.spec.id)
        if old.holding and not phase.holding and run.busy_since is not None:
            run.busy_s += now - run.busy_since
            run.busy_since = None
        elif phase.holding and not old.holding:
            run.busy_since = now
        if old.on_shift and not phase.on_shift and run.shift_since is not None:
            run.shift_s += now - run.shift_since
            run.shift_since = None
        elif phase.on_shift and not old.on_shift:
            run.shift_since = now
        run.phase = phase

    def on_shift(self) -> int:
        return len(self.couriers) - self.phases[Phase.OFF]

    def busy(self) -> int:
        return sum(self.phases[p] for p in _HOLDING)

    # -- orders ------------------------------------------------------------------------
    def placed(self, rec: OrderRecord) -> None:
        self.orders[rec.id] = rec
        self.open_orders += 1

    def picked_up(self, rec: OrderRecord, now: float) -> None:
        if rec.open:
            self.open_orders -= 1
        rec.picked_up_at = now

    def cancelled(self, rec: OrderRecord, now: float) -> None:
        if rec.open:
            self.open_orders -= 1
        rec.cancelled_at = now

    def delivered_order(self, rec: OrderRecord, now: float) -> None:
        if rec.delivered_at is None:
            self.delivered += 1
        rec.delivered_at = now

    def refused(self, code: str) -> None:
        self.refusals[code] += 1

    def close_books(self, end: float) -> None:
        """Count time on shift and busy time up to ``end`` (the run stops mid-shift)."""
        for run in self.couriers.values():
            if run.shift_since is not None:
                run.shift_s += end - run.shift_since
                run.shift_since = end
            if run.busy_since is not None:
                run.busy_s += end - run.busy_since
                run.busy_since = end
