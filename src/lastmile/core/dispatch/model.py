"""Values the dispatch engine reads (a snapshot, a policy) and writes (a plan).

Units: times are seconds on the caller's clock (int or float); positions are
planar metres ``(x_m, y_m)``. MDRP gives euclidean metres directly; a live city
projects lat/lng onto a local plane before building a snapshot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from lastmile.core.errors import InvalidInput
from lastmile.core.tenancy import DEFAULT_TENANT

if TYPE_CHECKING:
    from lastmile.core.dispatch.acceptance import AcceptancePricing


@dataclass(frozen=True, slots=True, kw_only=True)
class TravelModel:
    """Travel time = ceil(metres / metres_per_step) * step_s.

    MDRP: ``metres_per_step = meters_per_minute`` and ``step_s = 60`` gives
    exactly ``ceil(metres / meters_per_minute)`` minutes. A live city uses
    ``metres_per_step = speed in m/s`` and ``step_s = 1``.
    """

    metres_per_step: float
    step_s: float = 60.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.metres_per_step) and self.metres_per_step > 0):
            raise InvalidInput(
                "invalid_speed",
                f"metres_per_step must be > 0 (got {self.metres_per_step})",
                field="metres_per_step",
            )
        if not self.step_s > 0:
            raise InvalidInput(
                "invalid_step", f"step_s must be > 0 (got {self.step_s})", field="step_s"
            )

    def seconds(self, distance_m: NDArray[np.float64]) -> NDArray[np.float64]:
        """Travel seconds for an array of distances (same shape)."""
        return (
            np.ceil(np.asarray(distance_m, dtype=np.float64) / self.metres_per_step) * self.step_s
        )

    def seconds_between(self, ax: float, ay: float, bx: float, by: float) -> float:
        return math.ceil(math.hypot(ax - bx, ay - by) / self.metres_per_step) * self.step_s


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenOrder:
    """An order placed and not yet committed to a courier."""

    order_id: str
    merchant_id: str
    placed_s: float
    ready_s: float
    pickup_x_m: float
    pickup_y_m: float
    dropoff_x_m: float
    dropoff_y_m: float
    tenant: str = DEFAULT_TENANT  # whose order: a round pairs it only with its tenant's couriers
    moves: int = 0  # times it was moved from one courier to another (core.dispatch.reassign)
    # The latest delivery time promised to the consumer (the live app: the end of the quoted
    # window); ``None`` (MDRP, older callers): no promise. Only stacking reads it.
    promised_s: float | None = None

    def __post_init__(self) -> None:
        if self.ready_s < self.placed_s:
            raise InvalidInput(
                "ready_before_placement",
                f"ready_s must be >= placed_s ({self.placed_s}) (got {self.ready_s}) "
                f"for order {self.order_id}",
                field="ready_s",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class CourierState:
    """Where and when a courier can next take an instruction.

    ``free_s`` is the time the courier is (or will be) free at ``(x_m, y_m)``:
    its on-location, or the last stop of its current work. ``free_s <= now``
    means idle now. ``at_merchant_id`` names the merchant it waits at, if any.
    """

    courier_id: str
    x_m: float
    y_m: float
    free_s: float
    shift_start_s: float
    shift_end_s: float
    at_merchant_id: str | None = None
    tenant: str = DEFAULT_TENANT  # whose courier (core.dispatch.worlds)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommittedAssignment:
    """A bundle given to a courier and not yet picked up."""

    courier_id: str
    merchant_id: str
    orders: tuple[OpenOrder, ...]
    arrival_s: float
    pickup_s: float

    @property
    def order_ids(self) -> tuple[str, ...]:
        return tuple(o.order_id for o in self.orders)


@dataclass(frozen=True, slots=True, kw_only=True)
class Merchant:
    merchant_id: str
    x_m: float
    y_m: float
    demand_weight: float = 0.0
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    now_s: float
    orders: tuple[OpenOrder, ...]
    couriers: tuple[CourierState, ...]
    travel: TravelModel
    pickup_service_s: float
    dropoff_service_s: float
    committed: tuple[CommittedAssignment, ...] = ()
    merchants: tuple[Merchant, ...] = ()
    # The tenant the round runs for; each party names its own too, and a round never pairs
    # parties of different tenants (``core.dispatch.worlds``).
    tenant: str = DEFAULT_TENANT
    # The learnt acceptance model a round prices offers with (``core.dispatch.acceptance``,
    # policy ``acceptance_weight``); None: no pricing, today's costs.
    acceptance: AcceptancePricing | None = None


class PolicyKind(Enum):
    GREEDY = "greedy"
    OPTIMISED = "optimised"


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchPolicy:
    """Knobs of a dispatch round; defaults are the optimised MDRP policy, tuned on mdrplib
    seeds 0-2 only and validated on seeds 3-4 (docs/dispatch.md "Tuning and validation").

    - ``horizon_s``: orders ready later than ``now + horizon_s`` are left for later
      rounds, and busy couriers free later than that are not considered.
    - ``commit_slack_s``: a matched pair is committed only when the courier would
      have to leave within this slack to reach the merchant by the ready time
      (Reyes et al. 2018: commit late, keep options open).
    - ``max_bundle_size``: upper bound; the size used in a round grows with the
      ratio of urgent orders to available couriers.
    - ``max_ready_gap_s`` / ``max_extra_delay_s``: bundle compatibility.
    - ``idle_weight``: cost per second a courier waits at the merchant.
    - ``travel_weight``: cost per second a courier drives to the merchant.
    - ``shortage_travel_weight``: added to ``travel_weight`` in rounds with more
      bundles than couriers, when empty driving is what limits throughput.
    - ``shortage_busy_weight``: in those rounds, cost per second of courier time a pair
      uses (driving, waiting at the merchant, pickup, route until free again): when couriers
      are short, the bundles that take the least courier time go first (more served).
    - ``bundle_from_now``: bundling measures ready times from ``now`` at the earliest: food
      already ready waits from now on whatever its ready time, so two waiting orders of a
      merchant bundle even when their ready times are far apart.
    - ``allow_reassignment`` / ``reassign_min_gain_s`` / ``max_moves_per_order``: move a
      committed bundle to another courier when that picks it up more than the gain earlier,
      at most that many times per order (``reassign``). Off: MDRP forbids diverting a
      travelling courier; a live city's tenant switches it on.
    - ``candidate_k`` / ``dense_up_to_pairs``: a round with more couriers x bundles than
      ``dense_up_to_pairs`` prices and solves only each bundle's ``candidate_k`` nearest
      couriers by arrival (``candidates``); smaller rounds (every MDRP round) stay dense.
    - ``cell_bundles``: a sparse round with more bundles than this is solved as region
      cells of about this many bundles each (``partition``).
    - ``quiet_update_max_extra_s``: in a quiet round (at least as many couriers idle now as
      open orders) an assignment update may add at most this much click-to-door (summed
      over the bundle; ``max_extra_delay_s`` still bounds it): an idle courier can take the
      order alone, so a waiting courier's bundle grows only when that costs no one time.
      At ``max_extra_delay_s`` or above the quiet rounds are treated like any other.
    - ``late_weight``: cost credit per second an order already waits past its ready time
      (orders already waiting go first).
    - ``acceptance_weight``: weight of the expected re-offer delay of a pair the courier
      may refuse (``core.dispatch.acceptance``; needs ``Snapshot.acceptance``); 0 = costs
      as if every offer were taken, as MDRP's couriers do.
    """

    kind: PolicyKind = PolicyKind.OPTIMISED
    horizon_s: float = 40 * 60.0
    commit_slack_s: float = 2 * 60.0
    max_bundle_size: int = 4
    max_ready_gap_s: float = 10 * 60.0
    max_extra_delay_s: float = 15 * 60.0
    bundle_from_now: bool = True
    idle_weight: float = 0.0
    travel_weight: float = 0.0
    shortage_travel_weight: float = 1.5
    shortage_busy_weight: float = 1.0
    target_c2d_s: float = 40 * 60.0
    late_weight: float = 0.9
    allow_updates: bool = True
    max_update_delay_s: float = 2 * 60.0
    quiet_update_max_extra_s: float = 0.0
    allow_prepositioning: bool = True
    preposition_after_idle_s: float = 0.0
    preposition_radius_s: float = 15 * 60.0
    allow_reassignment: bool = False
    reassign_min_gain_s: float = 5 * 60.0
    max_moves_per_order: int = 1
    # Sparse rounds (docs/dispatch.md "Sparse rounds at city scale"): measured defaults.
    candidate_k: int = 8
    dense_up_to_pairs: int = 250_000
    cell_bundles: int = 3_000
    # Stacked orders across two merchants (``stacking``); off by default and in MDRP runs.
    allow_stacking: bool = False
    stack_radius_m: float = 800.0
    stack_dropoff_radius_m: float = 2_500.0
    stack_max_extra_delay_s: float = 10 * 60.0
    stack_max_food_wait_s: float = 8 * 60.0
    stack_min_saving_s: float = 60.0
    acceptance_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.max_bundle_size < 1:
            raise InvalidInput(
                "invalid_bundle_size",
                f"max_bundle_size must be >= 1 (got {self.max_bundle_size})",
                field="max_bundle_size",
            )
        if self.candidate_k < 1:
            raise InvalidInput(
                "invalid_candidate_k",
                f"candidate_k must be >= 1 (got {self.candidate_k})",
                field="candidate_k",
            )
        if self.cell_bundles < 1:
            raise InvalidInput(
                "invalid_policy",
                f"cell_bundles must be >= 1 (got {self.cell_bundles})",
                field="cell_bundles",
            )
        if self.dense_up_to_pairs < 0:
            raise InvalidInput(
                "invalid_policy",
                f"dense_up_to_pairs must be >= 0 (got {self.dense_up_to_pairs})",
                field="dense_up_to_pairs",
            )
        if not (math.isfinite(self.horizon_s) and self.horizon_s > 0):
            raise InvalidInput(
                "invalid_horizon",
                f"horizon_s must be > 0 (got {self.horizon_s})",
                field="horizon_s",
            )
        if self.max_bundle_size > MAX_BUNDLE_SIZE:
            raise InvalidInput(
                "invalid_bundle_size",
                f"max_bundle_size must be <= {MAX_BUNDLE_SIZE} (got {self.max_bundle_size})",
                field="max_bundle_size",
            )
        if not self.target_c2d_s > 0:
            raise InvalidInput("invalid_policy",
                               f"target_c2d_s must be > 0 (got {self.target_c2d_s})",
                               field="target_c2d_s")
        if not 0 <= self.max_moves_per_order <= MAX_MOVES_PER_ORDER:
            raise InvalidInput("invalid_policy",
                               f"max_moves_per_order must be in [0, {MAX_MOVES_PER_ORDER}] "
                               f"(got {self.max_moves_per_order})", field="max_moves_per_order")
        for name in _NON_NEGATIVE:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInput("invalid_policy", f"{name} must be >= 0 (got {value})",
                                   field=name)
        for name in ("stack_radius_m", "stack_dropoff_radius_m"):
            value = getattr(self, name)
            if not 0 < value <= MAX_STACK_RADIUS_M:
                raise InvalidInput(
                    "invalid_policy",
                    f"{name} must be > 0 and <= {MAX_STACK_RADIUS_M:g} (got {value})",
                    field=name)


# More orders than one delivery bag holds; the bound keeps a tenant's override near what the
# engine is tuned and benched for (4; sequenced exactly up to 4, by nearest neighbour above).
MAX_BUNDLE_SIZE = 8
# An order passed around more often than this is a dispatch bug, not an optimisation.
MAX_MOVES_PER_ORDER = 5
# Stacking joins merchants (and doors) a short ride apart; farther is two trips, not a stack.
MAX_STACK_RADIUS_M = 5_000.0
# Times (seconds) and cost weights: a negative one would reward what the policy penalises.
_NON_NEGATIVE = ("commit_slack_s", "max_ready_gap_s", "max_extra_delay_s", "idle_weight",
                 "travel_weight", "shortage_travel_weight", "shortage_busy_weight", "late_weight",
                 "max_update_delay_s", "quiet_update_max_extra_s", "preposition_after_idle_s",
                 "preposition_radius_s", "reassign_min_gain_s",
                 "stack_max_extra_delay_s", "stack_max_food_wait_s", "stack_min_saving_s",
                 "acceptance_weight")


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """One stop of a stacked route: pick up ``order_ids`` at merchant ``merchant_id``, or
    drop off ``order_ids`` (one order) at its door. ``offset_s`` is the planned time of the
    pickup / drop-off after the route's first pickup (MDRP's half-service convention)."""

    kind: str  # "pickup" | "dropoff"
    merchant_id: str
    order_ids: tuple[str, ...]
    x_m: float
    y_m: float
    offset_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    """Orders of one merchant picked up together, in drop-off sequence.

    ``route_s`` is the sum over its orders of (drop-off - pickup), the part of
    click-to-door that does not depend on the courier; ``detour_s`` is how much
    of it exceeds each order's direct trip (0 for a single order).

    A stacked bundle (``core.dispatch.stacking``) holds orders of two merchants: ``stops``
    lists its route (pickups first, then drop-offs); ``merchant_id``, ``x_m``/``y_m`` and
    ``ready_s`` are those of its first pickup, so costing and matching price it like any
    bundle; ``latest_pickup_s`` is the last first-pickup time that keeps every promised
    window and the food-wait bound (a courier arriving later is infeasible).
    """

    merchant_id: str
    order_ids: tuple[str, ...]
    ready_s: float
    x_m: float
    y_m: float
    route_s: float
    detour_s: float
    last_leg_end_s: float
    end_x_m: float
    end_y_m: float
    placed_s: tuple[float, ...] = field(default=())
    readies_s: tuple[float, ...] = field(default=())
    stops: tuple[Stop, ...] = ()
    latest_pickup_s: float = math.inf

    @property
    def merchant_ids(self) -> tuple[str, ...]:
        """The merchants in pickup order (one unless stacked)."""
        if not self.stops:
            return (self.merchant_id,)
        return tuple(s.merchant_id for s in self.stops if s.kind == "pickup")


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    """Instruction: ``courier_id`` goes to the merchant, picks up, delivers in order.

    A stacked assignment lists its route in ``stops`` (pickup at ``merchant_id`` first);
    ``pickup_s`` is the first pickup, each stop's time is ``pickup_s + stop.offset_s``.
    """

    courier_id: str
    merchant_id: str
    order_ids: tuple[str, ...]
    arrival_s: float
    pickup_s: float
    stops: tuple[Stop, ...] = ()

    @property
    def merchant_ids(self) -> tuple[str, ...]:
        if not self.stops:
            return (self.merchant_id,)
        return tuple(s.merchant_id for s in self.stops if s.kind == "pickup")


@dataclass(frozen=True, slots=True, kw_only=True)
class Reassignment:
    """A committed, not yet picked-up bundle of ``courier_id`` becomes ``order_ids``."""

    courier_id: str
    merchant_id: str
    order_ids: tuple[str, ...]
    pickup_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Preposition:
    """Send an idle courier to wait at a merchant."""

    courier_id: str
    merchant_id: str
    arrival_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchPlan:
    assignments: tuple[Assignment, ...] = ()
    reassignments: tuple[Reassignment, ...] = ()
    prepositions: tuple[Preposition, ...] = ()
