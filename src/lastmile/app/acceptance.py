"""The dispatcher's acceptance model: learnt from the platform's own offers, per tenant and
region, cached and refitted every ``refit_every_s`` (the fitting is pure:
``core.dispatch.acceptance.fit_acceptance``).

History: the region's ``offer.made`` events carry the features the offer showed
(``features``, written by the dispatch round, ``offer_event_features``); the event that
closed the offer says how it ended: ``offer.accepted`` (1), ``offer.declined`` or
``offer.expired`` (0). Withdrawn offers (an order cancelled, a shift ended) are not
answers and are left out, as are offers made without features (by ops, or before this).
No new table or column: the events table already holds all of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from lastmile.app.context import Services
from lastmile.app.tenancy import current_tenant
from lastmile.core.dispatch.acceptance import (
    DEFAULT_PRIOR_P,
    AcceptanceModel,
    AcceptancePricing,
    OfferFeatures,
    OfferOutcome,
    fit_acceptance,
    offer_features,
)
from lastmile.core.dispatch.model import OpenOrder, Snapshot
from lastmile.core.errors import InvalidInput
from lastmile.core.pay import DEFAULT_POLICY, PayPolicy

OUTCOME_TYPES = ("offer.accepted", "offer.declined", "offer.expired")
HISTORY_TYPES = ("offer.made", *OUTCOME_TYPES)


def load_history(services: Services, region_id: str, *, since: float) -> list[OfferOutcome]:
    """The region's answered offers made at or after ``since``, in the current tenant."""
    with services.uow(read_only=True) as uow:
        events = uow.events.of_types(region_id, HISTORY_TYPES, since=since)
    made: dict[str, tuple[str, OfferFeatures]] = {}
    out: list[OfferOutcome] = []
    for e in events:
        if e.type == "offer.made":
            raw = e.data.get("features")
            if isinstance(raw, dict):
                made[e.subject_id] = (str(e.data["courier_id"]), OfferFeatures.from_dict(raw))
        elif e.subject_id in made:
            courier_id, features = made.pop(e.subject_id)
            out.append(OfferOutcome(courier_id=courier_id, features=features,
                                    accepted=e.type == "offer.accepted"))
    return out


@dataclass(slots=True, kw_only=True)
class AcceptanceLearner:
    """Fitted models by (tenant, region), refitted when older than ``refit_every_s``.

    ``round_s`` is the dispatch interval: a refused offer's orders wait its TTL
    (``services.offer_ttl_s``) plus about a round before the next offer.
    """

    refit_every_s: float = 600.0
    window_s: float = 14 * 86_400.0
    memory_s: float = 3_600.0  # a refusal this recent prices its (courier, order) at p = 0
    round_s: float = 30.0
    prior_p: float = DEFAULT_PRIOR_P
    pay: PayPolicy = DEFAULT_POLICY
    _cache: dict[tuple[str, str], tuple[float, AcceptanceModel]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("refit_every_s", "window_s", "round_s", "memory_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInput("invalid_acceptance", f"{name} must be >= 0 (got {value})",
                                   field=name)

    def model(self, services: Services, region_id: str) -> AcceptanceModel:
        now = services.clock.now()
        key = (current_tenant(), region_id)
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.refit_every_s:
            return hit[1]
        history = load_history(services, region_id, since=now - self.window_s)
        fitted = fit_acceptance(history, prior_p=self.prior_p)
        self._cache[key] = (now, fitted)
        return fitted

    def pricing(self, services: Services, region_id: str) -> AcceptancePricing:
        """The cached model, and the refusals of the last ``memory_s`` read afresh."""
        since = services.clock.now() - self.memory_s
        return AcceptancePricing(model=self.model(services, region_id), pay=self.pay,
                                 reoffer_delay_s=services.offer_ttl_s + self.round_s,
                                 refused=recent_refusals(services, region_id, since=since))


def recent_refusals(services: Services, region_id: str, *,
                    since: float) -> frozenset[tuple[str, str]]:
    """(courier id, order id) of every offer declined or expired at or after ``since``."""
    with services.uow(read_only=True) as uow:
        events = uow.events.of_types(region_id, ("offer.declined", "offer.expired"),
                                     since=since)
    return frozenset((str(e.data["courier_id"]), str(order_id))
                     for e in events for order_id in e.data.get("order_ids", ()))


class OfferFeaturesOf:
    """The features an offer shows, from the round's snapshot: the courier's free
    position, the orders' merchant and drop-offs in offer order (``offer_features``).
    Built once per round (lookups by id)."""

    def __init__(self, snapshot: Snapshot, pay: PayPolicy = DEFAULT_POLICY):
        self.now_s, self.pay = snapshot.now_s, pay
        self.couriers = {c.courier_id: (c.x_m, c.y_m) for c in snapshot.couriers}
        self.orders: dict[str, OpenOrder] = {o.order_id: o for o in snapshot.orders}
        for held in snapshot.committed:
            self.orders.update((o.order_id, o) for o in held.orders)

    def __call__(self, courier_id: str, order_ids: tuple[str, ...]) -> dict[str, float] | None:
        """The offer's features as the ``offer.made`` event stores them; None when the
        snapshot lacks the courier or one of the orders."""
        at = self.couriers.get(courier_id)
        seq = [self.orders[i] for i in order_ids if i in self.orders]
        if at is None or not seq or len(seq) != len(order_ids):
            return None
        x, y = seq[0].pickup_x_m, seq[0].pickup_y_m
        pickup = math.hypot(at[0] - x, at[1] - y)
        trip = 0.0
        for o in seq:
            trip += math.hypot(o.dropoff_x_m - x, o.dropoff_y_m - y)
            x, y = o.dropoff_x_m, o.dropoff_y_m
        return offer_features(pickup_m=pickup, trip_m=trip, n_orders=len(seq),
                              at_s=self.now_s, pay=self.pay).as_dict()


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferTrail:
    """One offer as its events tell it: made, then closed (or still pending: ``None``)."""

    offer_id: str
    courier_id: str
    order_ids: tuple[str, ...]
    made_at: float
    closed_as: str | None = None  # accepted, declined, expired, withdrawn
    closed_at: float | None = None
    stacked: bool = False  # a stacked route across merchants (its events carry a stack_id)
    from_courier_id: str | None = None  # a move (reassignment): who held the orders


def offer_trails(services: Services, region_id: str, *, since: float) -> list[OfferTrail]:
    """The region's offers made at or after ``since`` with how each ended, in the current
    tenant, in the order they were made (the simulator's offer KPIs read them)."""
    types = (*HISTORY_TYPES, "offer.withdrawn")
    with services.uow(read_only=True) as uow:
        events = uow.events.of_types(region_id, types, since=since)
    trails: dict[str, OfferTrail] = {}
    for e in events:
        if e.type == "offer.made":
            giver = e.data.get("from_courier_id")
            trails[e.subject_id] = OfferTrail(
                offer_id=e.subject_id, courier_id=str(e.data["courier_id"]),
                order_ids=tuple(str(i) for i in e.data["order_ids"]), made_at=e.occurred_at,
                stacked=e.data.get("stack_id") is not None,
                from_courier_id=None if giver is None else str(giver))
        elif e.subject_id in trails and trails[e.subject_id].closed_as is None:
            trails[e.subject_id] = replace(trails[e.subject_id],
                                           closed_as=e.type.removeprefix("offer."),
                                           closed_at=e.occurred_at)
    return list(trails.values())
