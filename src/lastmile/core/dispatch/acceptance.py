"""Acceptance: how likely a courier takes an offer, learnt from the platform's own offers,
and priced into a round's costs (pure).

**Features** (``OfferFeatures``) are what the courier sees on the offer: the distance to
the merchant, the trip (merchant through the drop-offs), the estimated pay and minutes
(so pay per minute), the number of orders and the local hour. ``offer_features`` builds
them from distances with one rule, so the dispatcher, the offer's ``offer.made`` event
and the simulator's couriers agree on what an offer shows.

**Model** (``fit_acceptance``): a logistic regression on the features, fitted by Newton
steps with a ridge penalty that pulls the coefficients toward the prior (intercept
``logit(prior_p)``, slopes 0), so little history stays near the prior and none *is* the
prior. Each courier then gets a Beta-Binomial correction: with ``n`` answered offers, ``a``
accepted and the regression's mean prediction ``m`` on those offers, the courier's rate is
the posterior mean ``(a + k m) / (n + k)`` of a Beta(k m, k (1 - m)) prior
(``courier_strength`` = k pseudo-offers), applied as the log-odds shift
``logit(posterior) - logit(m)``. A courier without history gets no shift. Outcomes:
accepted = 1; declined and expired (no answer) = 0; withdrawn offers are not answers and
are left out by the caller.

**Pricing** (``price_acceptance``): an offer refused (declined or let expire) puts its
orders back in the pool for a re-offer, about ``reoffer_delay_s`` (the offer's TTL plus a
dispatch round) later. If every re-offer had the same chance p, the expected number of
refusals before a taker is (1 - p) / p (geometric), so the expected extra click-to-door of
offering bundle b to courier c is ``(1 - p_cb) / p_cb * |b| * reoffer_delay_s``, with p
floored at ``P_FLOOR`` (2 %: at most 50 re-offers' worth, so a pair stays finite and below
the serve reward: an order with one candidate is still offered). The round adds
``acceptance_weight`` times that to the pair's cost (the costs are order-seconds,
``costing``). A pair whose courier has already refused one of the bundle's orders
(``AcceptancePricing.refused``) is priced at p = 0, i.e. the floor: a simulated courier,
like a person, turns down again what it just turned down, and today's dispatcher, blind to
that, offers the same order to the same courier round after round. Weight 0 (the
default, and MDRP's) leaves the costs as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from lastmile.core.dispatch.model import Bundle, CourierState, TravelModel
from lastmile.core.errors import InvalidInput
from lastmile.core.eta import travel as one_travel_model
from lastmile.core.pay import DEFAULT_POLICY, DeliveredOrder, PayPolicy, order_lines

# The speed an offer's minutes are estimated at: the live dispatcher's default (a bicycle,
# 4.5 m/s, on streets 30 % longer than the crow flies; core.eta.travel, app.dispatching).
ESTIMATE_SPEED_MPS = one_travel_model.DEFAULT_SPEED_MPS / one_travel_model.ROAD_FACTOR
PICKUP_SERVICE_S = one_travel_model.PICKUP_HANDOVER_S
DROPOFF_SERVICE_S = one_travel_model.DROPOFF_HANDOVER_S
DEFAULT_PRIOR_P = 0.8
FEATURE_NAMES = ("intercept", "pickup_km", "trip_km", "pay_per_min", "extra_orders",
                 "hour_sin", "hour_cos")
_P_MIN, _P_MAX = 1e-4, 1 - 1e-4
P_FLOOR = 0.02


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferFeatures:
    """What an offer shows its courier. Distances in metres, pay in minor units."""

    pickup_m: float
    trip_m: float
    pay_minor: int
    est_min: float
    n_orders: int
    hour: float  # local hour of the day, 0 <= hour < 24

    def __post_init__(self) -> None:
        if not (self.pickup_m >= 0 and self.trip_m >= 0 and self.est_min > 0):
            raise InvalidInput("invalid_features", "distances must be >= 0 and est_min > 0 "
                               f"(got {self.pickup_m}, {self.trip_m}, {self.est_min})",
                               field="features")
        if self.n_orders < 1 or not 0 <= self.hour < 24:
            raise InvalidInput("invalid_features", f"n_orders must be >= 1 and hour in [0, 24) "
                               f"(got {self.n_orders}, {self.hour})", field="features")

    @property
    def pay_per_min(self) -> float:
        """Estimated pay per minute of work, in major units (dollars a minute)."""
        return self.pay_minor / 100 / self.est_min

    def as_dict(self) -> dict[str, float]:
        return {"pickup_m": round(self.pickup_m, 1), "trip_m": round(self.trip_m, 1),
                "pay_minor": self.pay_minor, "est_min": round(self.est_min, 3),
                "n_orders": self.n_orders, "hour": round(self.hour, 4)}

    @classmethod
    def from_dict(cls, d: Mapping[str, float]) -> OfferFeatures:
        return cls(pickup_m=float(d["pickup_m"]), trip_m=float(d["trip_m"]),
                   pay_minor=int(d["pay_minor"]), est_min=float(d["est_min"]),
                   n_orders=int(d["n_orders"]), hour=float(d["hour"]))


def estimate_pay_minor(pay: PayPolicy, *, trip_m: float, trip_s: float, n_orders: int,
                       at_s: float) -> int:
    """The pay pipeline's earnings for the offer's orders, the trip split evenly between
    them (no tips: they are not known when the offer is made)."""
    share = DeliveredOrder(order_id="offer", delivered_at=at_s,
                           distance_m=round(trip_m / n_orders), duration_s=round(trip_s / n_orders))
    lines = order_lines(pay, share)
    return n_orders * sum(ln.amount.amount_minor for ln in lines if ln.component != "tip")


def offer_features(*, pickup_m: float, trip_m: float, n_orders: int, at_s: float,
                   pay: PayPolicy = DEFAULT_POLICY) -> OfferFeatures:
    """An offer's features from its two distances: minutes at ``ESTIMATE_SPEED_MPS`` plus
    the pickup and drop-off services; pay from ``pay`` on the trip; the hour from ``pay``'s
    UTC offset (the city's local time)."""
    trip_s = trip_m / ESTIMATE_SPEED_MPS + n_orders * DROPOFF_SERVICE_S
    est_s = pickup_m / ESTIMATE_SPEED_MPS + PICKUP_SERVICE_S + trip_s
    return OfferFeatures(
        pickup_m=pickup_m, trip_m=trip_m, n_orders=n_orders, est_min=est_s / 60,
        pay_minor=estimate_pay_minor(pay, trip_m=trip_m, trip_s=trip_s, n_orders=n_orders,
                                     at_s=at_s),
        hour=(pay.minute_of_day(at_s) + (at_s % 60) / 60) / 60)


def design_row(f: OfferFeatures) -> NDArray[np.float64]:
    """The regression's inputs, in ``FEATURE_NAMES`` order (scaled to about unit size)."""
    angle = 2 * math.pi * f.hour / 24
    return np.array([1.0, f.pickup_m / 1000, f.trip_m / 1000, f.pay_per_min,
                     f.n_orders - 1.0, math.sin(angle), math.cos(angle)])


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferOutcome:
    """One answered offer of the history: who, what it showed, taken or not."""

    courier_id: str
    features: OfferFeatures
    accepted: bool


def _logit(p: float) -> float:
    p = min(_P_MAX, max(_P_MIN, p))
    return math.log(p / (1 - p))


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptanceModel:
    """P(accept) = sigmoid(coef . design_row(features) + offset of the courier)."""

    coef: tuple[float, ...]
    offsets: Mapping[str, float] = field(default_factory=dict)
    n_offers: int = 0

    @classmethod
    def prior(cls, prior_p: float = DEFAULT_PRIOR_P) -> AcceptanceModel:
        """The model with no history: ``prior_p`` for every courier and offer."""
        return cls(coef=(_logit(prior_p),) + (0.0,) * (len(FEATURE_NAMES) - 1))

    def p(self, courier_id: str, features: OfferFeatures) -> float:
        z = float(np.dot(self.coef, design_row(features))) + self.offsets.get(courier_id, 0.0)
        return float(_sigmoid(np.array([z]))[0])


def fit_acceptance(history: Sequence[OfferOutcome], *, prior_p: float = DEFAULT_PRIOR_P,
                   ridge: float = 2.0, courier_strength: float = 20.0,
                   iterations: int = 30) -> AcceptanceModel:
    """Fit the model of the module docstring. Deterministic; empty history -> the prior.

    ``ridge`` is the penalty's weight (in offers' worth of log-likelihood) on each
    coefficient's distance from the prior; ``courier_strength`` is k, the pseudo-offers
    of each courier's Beta prior.
    """
    if not 0 < prior_p < 1:
        raise InvalidInput("invalid_prior", f"prior_p must be in (0, 1) (got {prior_p})",
                           field="prior_p")
    base = np.array(AcceptanceModel.prior(prior_p).coef)
    if not history:
        return AcceptanceModel(coef=tuple(float(c) for c in base))
    x = np.stack([design_row(o.features) for o in history])
    y = np.array([1.0 if o.accepted else 0.0 for o in history])
    beta = base.copy()
    eye = np.eye(len(base)) * ridge
    for _ in range(iterations):  # Newton (IRLS) on the penalised log-likelihood
        p = _sigmoid(x @ beta)
        grad = x.T @ (y - p) - ridge * (beta - base)
        hess = (x.T * (p * (1 - p))) @ x + eye
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    pred = _sigmoid(x @ beta)
    sums: dict[str, list[float]] = {}
    for o, m, a in zip(history, pred, y, strict=True):
        acc = sums.setdefault(o.courier_id, [0.0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += float(a)
        acc[2] += float(m)
    offsets = {}
    for cid, (n, a, e) in sorted(sums.items()):
        mean = e / n
        posterior = (a + courier_strength * mean) / (n + courier_strength)
        offsets[cid] = _logit(posterior) - _logit(mean)
    return AcceptanceModel(coef=tuple(float(c) for c in beta), offsets=offsets,
                           n_offers=len(history))


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptancePricing:
    """What a round needs to price acceptance: the fitted model, the delay a refused offer
    costs each of its orders (TTL + a round, seconds), the pay policy offers show, and the
    (courier id, order id) pairs whose offer the courier recently declined or let expire."""

    model: AcceptanceModel
    reoffer_delay_s: float
    pay: PayPolicy = DEFAULT_POLICY
    refused: frozenset[tuple[str, str]] = frozenset()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.reoffer_delay_s) and self.reoffer_delay_s >= 0):
            raise InvalidInput("invalid_policy",
                               f"reoffer_delay_s must be >= 0 (got {self.reoffer_delay_s})",
                               field="reoffer_delay_s")


def acceptance_matrix(couriers: Sequence[CourierState], bundles: Sequence[Bundle], *,
                      model: AcceptanceModel, now_s: float, travel: TravelModel,
                      pickup_service_s: float, dropoff_service_s: float,
                      pay: PayPolicy = DEFAULT_POLICY,
                      arcs: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None,
                      ) -> NDArray[np.float64]:
    """P(accept) for every (courier, bundle) pair, couriers x bundles, each in [0, 1]; with
    ``arcs`` = (courier_ix, bundle_ix), for those pairs only (1-D, a sparse round's arcs).

    The features are those ``offer_features`` gives the offer: the straight-line distance
    from the courier's free position to the merchant, and the bundle's trip in metres
    (its drop-off driving time, ``Bundle.last_leg_end_s`` less services, at the travel
    model's speed).
    """
    pos = np.array([(c.x_m, c.y_m) for c in couriers], dtype=np.float64).reshape(-1, 2)
    mpos = np.array([(b.x_m, b.y_m) for b in bundles], dtype=np.float64).reshape(-1, 2)
    speed = travel.metres_per_step / travel.step_s
    per_bundle = [
        offer_features(pickup_m=0.0, n_orders=len(b.order_ids), at_s=now_s, pay=pay,
                       trip_m=max(0.0, (b.last_leg_end_s - pickup_service_s / 2
                                        - len(b.order_ids) * dropoff_service_s) * speed))
        for b in bundles
    ]
    trip_km = np.array([f.trip_m / 1000 for f in per_bundle])
    pay_major = np.array([f.pay_minor / 100 for f in per_bundle])
    base_min = np.array([f.est_min for f in per_bundle])  # minutes with no pickup distance
    extra = np.array([f.n_orders - 1.0 for f in per_bundle])
    offset = np.array([model.offsets.get(k.courier_id, 0.0) for k in couriers])
    if arcs is None:  # every pair: couriers as rows, bundles as columns
        ci: NDArray[np.intp] | slice = np.arange(len(couriers))[:, None]
        bi: NDArray[np.intp] | slice = np.arange(len(bundles))[None, :]
    else:
        ci, bi = arcs
    pickup_m = np.hypot(pos[ci, 0] - mpos[bi, 0], pos[ci, 1] - mpos[bi, 1])
    angle = 2 * math.pi * per_bundle[0].hour / 24 if per_bundle else 0.0
    est_min = base_min[bi] + pickup_m / ESTIMATE_SPEED_MPS / 60
    c = model.coef
    z = (c[0] + c[1] * pickup_m / 1000 + c[2] * trip_km[bi]
         + c[3] * pay_major[bi] / est_min + c[4] * extra[bi]
         + c[5] * math.sin(angle) + c[6] * math.cos(angle))
    z = z + offset[ci]
    return _sigmoid(z)


def price_acceptance(cost: NDArray[np.float64], couriers: Sequence[CourierState],
                     bundles: Sequence[Bundle], *, pricing: AcceptancePricing | None,
                     weight: float, now_s: float, travel: TravelModel, pickup_service_s: float,
                     dropoff_service_s: float, infeasible: float,
                     arcs: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None,
                     ) -> NDArray[np.float64]:
    """``cost`` plus ``weight * (1 - p) / max(p, P_FLOOR) * |b| * reoffer_delay_s`` on every
    feasible pair
    (entries at ``infeasible`` or above stay as they are). No pricing or weight 0: ``cost``
    itself. p = 1 adds nothing; a lower p never lowers a cost. Returns a new array.
    ``cost`` is couriers x bundles, or with ``arcs`` = (courier_ix, bundle_ix) one entry per
    arc of a sparse round (the same prices, pair by pair)."""
    if pricing is None or weight == 0 or cost.size == 0:
        return cost
    p = acceptance_matrix(couriers, bundles, model=pricing.model, now_s=now_s, travel=travel,
                          pickup_service_s=pickup_service_s,
                          dropoff_service_s=dropoff_service_s, pay=pricing.pay, arcs=arcs)
    if pricing.refused:
        mask = refused_mask(couriers, bundles, pricing.refused)
        p = np.where(mask if arcs is None else mask[arcs[0], arcs[1]], 0.0, p)
    size = np.array([len(b.order_ids) for b in bundles], dtype=np.float64)
    refusals = (1.0 - p) / np.maximum(p, P_FLOOR)  # expected refusals before a taker
    extra = weight * refusals * (size[None, :] if arcs is None else size[arcs[1]])
    extra = extra * pricing.reoffer_delay_s
    out: NDArray[np.float64] = np.where(cost >= infeasible, cost, cost + extra)
    return out


def refused_mask(couriers: Sequence[CourierState], bundles: Sequence[Bundle],
                 refused: frozenset[tuple[str, str]]) -> NDArray[np.bool_]:
    """True where the courier has refused one of the bundle's orders (couriers x bundles)."""
    mask = np.zeros((len(couriers), len(bundles)), dtype=np.bool_)
    row = {c.courier_id: i for i, c in enumerate(couriers)}
    cols: dict[str, list[int]] = {}
    for j, b in enumerate(bundles):
        for order_id in b.order_ids:
            cols.setdefault(order_id, []).append(j)
    for courier_id, order_id in refused:
        i = row.get(courier_id)
        if i is not None:
            mask[i, cols.get(order_id, [])] = True
    return mask
