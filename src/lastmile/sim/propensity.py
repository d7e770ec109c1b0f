"""Simulated couriers' hidden propensities to take an offer, and how long they take to answer.

Each courier gets traits once, at the start of the run (``draw_traits``, from its own
random stream, so the demand and the city do not move): a base willingness, a dislike of
driving to the merchant, a taste for pay per minute, a favourite time of day, a typical
response time, and a chance of not answering at all (the offer times out). The platform
never sees the traits; its dispatcher learns acceptance from the offers' outcomes
(``core.dispatch.acceptance``).

The rule (``accept_probability``), in log-odds::

    base + distance_per_km * pickup_km + pay_per_dollar_min * (pay_per_min - 0.5)
         + hour_amplitude * cos(2 pi (hour - favourite_hour) / 24) - extra_order_penalty * (n - 1)

``decide`` draws, always three numbers in the same order (deterministic for a seeded
generator): whether the courier looks at the offer at all (no: ``(False, inf)``, it
expires), the response delay (log-normal around its median), and the answer.

A courier answers the same offer the same way: the world draws from ``offer_rng``, seeded
by the run's seed, the courier and the offer's orders, so a courier who declined (or
ignored) an order does so again when it is offered again, as a person would; re-offering
is no way round a "no".
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lastmile.core.dispatch.acceptance import OfferFeatures, offer_features
from lastmile.core.geo import Point, haversine_m
from lastmile.core.pay import DEFAULT_POLICY, PayPolicy

if TYPE_CHECKING:
    from lastmile.sim.couriers import OfferSeen

NO_ANSWER = math.inf
REFERENCE_PAY_PER_MIN = 0.5  # dollars a minute: the pay a courier is indifferent about


@dataclass(frozen=True, slots=True, kw_only=True)
class CourierTraits:
    base_logit: float
    distance_per_km: float  # <= 0: log-odds lost per km to the merchant
    pay_per_dollar_min: float  # >= 0: log-odds gained per $/min of estimated pay
    favourite_hour: float
    hour_amplitude: float  # >= 0
    extra_order_penalty: float  # >= 0: log-odds lost per order beyond the first
    response_median_s: float
    response_sigma: float
    ignore_p: float  # chance of letting an offer time out


def draw_traits(rng: random.Random) -> CourierTraits:
    """One courier's traits: most are willing (base ~ 88 %), all dislike long drives to
    the merchant to a varying degree, one in five is flaky (lets 10-30 % of offers time out)."""
    flaky = rng.random() < 0.2
    return CourierTraits(
        base_logit=rng.gauss(2.0, 0.8),
        distance_per_km=-abs(rng.gauss(0.6, 0.35)),
        pay_per_dollar_min=abs(rng.gauss(1.5, 0.8)),
        favourite_hour=rng.uniform(10.0, 21.0),
        hour_amplitude=abs(rng.gauss(0.0, 0.5)),
        extra_order_penalty=abs(rng.gauss(0.2, 0.2)),
        response_median_s=rng.uniform(5.0, 30.0),
        response_sigma=rng.uniform(0.3, 0.8),
        ignore_p=rng.uniform(0.1, 0.3) if flaky else rng.uniform(0.0, 0.03),
    )


def draw_city_traits(courier_ids: Iterable[str], rng: random.Random) -> dict[str, CourierTraits]:
    """Traits for every courier, drawn in id order (same ids and seed -> same traits)."""
    return {cid: draw_traits(rng) for cid in sorted(courier_ids)}


def accept_probability(traits: CourierTraits, f: OfferFeatures) -> float:
    """P(the courier accepts, given it answers); the rule of the module docstring."""
    z = (traits.base_logit + traits.distance_per_km * f.pickup_m / 1000
         + traits.pay_per_dollar_min * (f.pay_per_min - REFERENCE_PAY_PER_MIN)
         + traits.hour_amplitude * math.cos(2 * math.pi * (f.hour - traits.favourite_hour) / 24)
         - traits.extra_order_penalty * (f.n_orders - 1))
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


def decide(traits: CourierTraits, features: OfferFeatures,
           rng: random.Random) -> tuple[bool, float]:
    """(accept, seconds until the answer); ``(False, NO_ANSWER)`` when the courier lets the
    offer time out. Draws three numbers from ``rng`` whatever the outcome."""
    looks, noise, u = rng.random(), rng.gauss(0.0, 1.0), rng.random()
    if looks < traits.ignore_p:
        return False, NO_ANSWER
    after = traits.response_median_s * math.exp(traits.response_sigma * noise)
    return u < accept_probability(traits, features), after


def offer_rng(seed: int, courier_id: str, order_ids: Iterable[str]) -> random.Random:
    """The generator a courier's answer to these orders is drawn from (module docstring)."""
    return random.Random(f"{seed}|{courier_id}|{','.join(sorted(order_ids))}")


def answer(traits: CourierTraits, features: OfferFeatures, rng: random.Random, *,
           expires_in_s: float | None, default_ttl_s: float = 60.0) -> tuple[bool, float]:
    """``decide`` against the offer's clock: a courier that does not answer before the
    offer expires (``expires_in_s`` from now; unknown: ``default_ttl_s``) answers "no",
    a second after the expiry (the platform then refuses it as expired, and the courier is
    free again)."""
    accept, after = decide(traits, features, rng)
    left = default_ttl_s if expires_in_s is None else max(0.0, expires_in_s)
    if after > left:
        return False, left + 1.0
    return accept, after


def features_seen(*, courier_at: Point, merchant_at: Point, dropoffs: Sequence[Point],
                  at_s: float, pay: PayPolicy = DEFAULT_POLICY) -> OfferFeatures:
    """The offer as its courier reads it: the distance to the merchant, the trip through
    the drop-offs in order (as the crow flies), and the platform's rule for minutes and
    pay (``core.dispatch.acceptance.offer_features``); the hour is local by ``pay``'s UTC
    offset."""
    trip, at = 0.0, merchant_at
    for d in dropoffs:
        trip += haversine_m(at, d)
        at = d
    return offer_features(pickup_m=haversine_m(courier_at, merchant_at), trip_m=trip,
                          n_orders=max(1, len(dropoffs)), at_s=at_s, pay=pay)


@dataclass(frozen=True, slots=True)
class HiddenPropensities:
    """The simulator's offer decision (``sim.couriers.OfferDecision``) with each courier's
    hidden traits: what the courier reads on the offer (``features_seen``) decides, against
    the offer's clock (``answer``); the same courier answers the same offer the same way
    (``offer_rng``)."""

    traits: Mapping[str, CourierTraits]
    merchant_at: Mapping[str, Point]  # merchant id -> location
    seed: int
    pay: PayPolicy = DEFAULT_POLICY  # its UTC offset makes the offer's hour the city's

    def __call__(self, seen: OfferSeen) -> tuple[bool, float]:
        if not seen.orders:
            return False, 0.0
        features = features_seen(courier_at=seen.at,
                                 merchant_at=self.merchant_at[seen.orders[0].merchant_id],
                                 dropoffs=[r.dropoff for r in seen.orders], at_s=seen.now,
                                 pay=self.pay)
        expires = seen.offer.expires_at
        rng = offer_rng(self.seed, seen.courier.id, seen.offer.order_ids)
        return answer(self.traits[seen.courier.id], features, rng,
                      expires_in_s=None if expires is None else expires - seen.now)
