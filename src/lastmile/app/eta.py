"""Serving ETAs: the incumbent model answers, a shadow model is predicted and logged beside
it, and the shadow is promoted when its live error beats the incumbent's.

Models are versioned files behind a port (``app.ports.EtaModelRegistry``; the file adapter is
``adapters.eta_models``). With no registry, or a registry with no incumbent file, the
incumbent is the pricing policy's heuristic (``core.pricing.eta_estimate``): the default,
and what a tenant's overrides of the pickup leg, cycle and window shape.

- ``serve``: a quote's window from the incumbent (a learned incumbent replaces the
  heuristic's window; the quote keeps its prices);
- ``record_shadow``: at checkout, when a shadow is configured, one ``eta.shadow_predicted``
  event per order with both estimates (seconds from placement). Never shown to anyone;
- ``live_errors`` / ``decide_promotion``: both models' errors over the orders delivered
  since, read back from those events (``lastmile eta promote``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from lastmile.app import eta_queue, experiments
from lastmile.app.context import Services, new_event, record
from lastmile.app.eta_history import features_at
from lastmile.app.ports import UnitOfWork
from lastmile.core.eta.engine import estimate
from lastmile.core.eta.features import EtaEstimate, EtaFeatures
from lastmile.core.experiments.definition import Context
from lastmile.core.geo import Point
from lastmile.core.model import Merchant, Region
from lastmile.core.orders import Order, OrderStatus
from lastmile.core.pricing import PricingPolicy, Quote, SupplyDemand, window_of

SHADOW_EVENT = "eta.shadow_predicted"


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteContext:
    """What a quote knows about an order, for a learned model's features."""

    merchant: Merchant
    region: Region
    dropoff: Point
    supply: SupplyDemand
    policy: PricingPolicy
    items: int | None = None
    subtotal_minor: int | None = None
    consumer_id: str | None = None


def quote_features(uow: UnitOfWork, services: Services, ctx: QuoteContext,
                   now: float) -> EtaFeatures:
    """``EtaFeatures`` at quote time: ``app.eta_history.features_at``, the definition the
    delivery history stores at placement, so a model trained on the history is served the
    numbers it learned from (the region's minute counters, the merchant's recent
    preparation times, the quote's idle count)."""
    return features_at(
        uow, services, merchant_id=ctx.merchant.id, region=ctx.region,
        pickup=ctx.merchant.location, dropoff=ctx.dropoff, now=now,
        default_prep_s=ctx.merchant.prep_time_s,
        idle_couriers=ctx.supply.available_couriers, items=ctx.items,
        subtotal_minor=ctx.subtotal_minor)


def serve(services: Services, uow: UnitOfWork, q: Quote, ctx: QuoteContext) -> Quote:
    """``q`` with the served model's window (the prices are the quote's). The served model
    is the incumbent model file, unless a running ``eta`` experiment's arm for the consumer
    (or region) names the ``shadow`` or the ``heuristic`` (app.experiments). With no model
    file served: ``heuristic-3`` (``app.eta_queue``) when the policy's ``eta_queue`` says so
    and the region has no backlog, else the quote unchanged (``heuristic-2``, its own)."""
    now = services.clock.now()
    registry = services.eta_models
    model = None
    if registry is not None:
        arm = experiments.overrides(services, "eta", Context(
            at_s=now, consumer_id=ctx.consumer_id, region_id=ctx.region.id), uow=uow)
        choice = arm.get("model", "incumbent")
        model = (None if choice == "heuristic"
                 else (registry.shadow() or registry.incumbent()) if choice == "shadow"
                 else registry.incumbent())
    if model is None:
        if not ctx.policy.eta_queue:
            return q
        est = eta_queue.estimate(uow, services, merchant=ctx.merchant, region=ctx.region,
                                 dropoff=ctx.dropoff, now=now, params=services.queue_params)
        return q if est is None else replace(q, eta=window_of(est, now), estimate=est)
    features = quote_features(uow, services, ctx, now)
    est = estimate(features, model)
    return replace(q, eta=window_of(est, now), estimate=est, features=features)


def record_shadow(uow: UnitOfWork, services: Services, order: Order, q: Quote,
                  features: EtaFeatures) -> None:
    """Log the shadow's estimate beside the served one for a placed order (no shadow: no
    event). In the caller's transaction, like the order; ``features``: the order's
    placement features (its history record's), so the shadow sees what the history
    stores."""
    registry = services.eta_models
    shadow = registry.shadow() if registry is not None else None
    if shadow is None:
        return
    served = q.estimate or EtaEstimate(
        point_s=q.eta.expected_at - order.placed_at, p10_s=q.eta.low_at - order.placed_at,
        p90_s=q.eta.high_at - order.placed_at, model="unknown")
    guess = estimate(features, shadow)
    record(uow, services, new_event(
        services, type=SHADOW_EVENT, region_id=order.region_id, subject_id=order.id,
        actor_kind="system", actor_id="eta", data={
            "placed_at": order.placed_at, "served": _doc(served), "shadow": _doc(guess)}))


def _doc(e: EtaEstimate) -> dict[str, object]:
    return {"model": e.model, "point_s": e.point_s, "p10_s": e.p10_s, "p90_s": e.p90_s}


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveError:
    model: str
    orders: int
    mae_s: float
    coverage80: float
    """Share of delivered orders inside the model's p10-p90 window."""


def live_errors(services: Services, *, since: float) -> tuple[LiveError, LiveError] | None:
    """(served, shadow) errors over orders placed since ``since`` and delivered, across
    regions (the current tenant's); None when no such order has a shadow estimate."""
    pairs: list[tuple[float, dict[str, object], dict[str, object]]] = []
    with services.uow(read_only=True) as uow:
        for region in uow.regions.list():
            for e in uow.events.of_types(region.id, [SHADOW_EVENT], since=since):
                order = uow.orders.get(e.subject_id)
                if (order is None or order.status is not OrderStatus.DELIVERED
                        or order.delivered_at is None):
                    continue
                served, shadow = e.data.get("served"), e.data.get("shadow")
                if isinstance(served, dict) and isinstance(shadow, dict):
                    pairs.append((order.delivered_at - order.placed_at, served, shadow))
    if not pairs:
        return None
    return _error([(t, s) for t, s, _ in pairs]), _error([(t, s) for t, _, s in pairs])


def _error(rows: list[tuple[float, dict[str, object]]]) -> LiveError:
    def num(d: dict[str, object], k: str) -> float:
        v = d.get(k)
        return float(v) if isinstance(v, int | float) else math.nan

    errs = [abs(t - num(d, "point_s")) for t, d in rows]
    inside = [num(d, "p10_s") <= t <= num(d, "p90_s") for t, d in rows]
    return LiveError(model=str(rows[-1][1].get("model")), orders=len(rows),
                     mae_s=sum(errs) / len(errs), coverage80=sum(inside) / len(inside))


@dataclass(frozen=True, slots=True, kw_only=True)
class Promotion:
    promote: bool
    reason: str
    served: LiveError | None = None
    shadow: LiveError | None = None


def decide_promotion(served: LiveError | None, shadow: LiveError | None, *,
                     min_orders: int = 200) -> Promotion:
    """Promote when the shadow's live MAE is below the incumbent's over at least
    ``min_orders`` delivered orders (the same orders for both)."""
    if served is None or shadow is None:
        return Promotion(promote=False, reason="no delivered order has a shadow estimate yet")
    if shadow.orders < min_orders:
        return Promotion(promote=False, served=served, shadow=shadow,
                         reason=f"{shadow.orders} delivered orders with a shadow estimate; "
                         f"need {min_orders}")
    if shadow.mae_s >= served.mae_s:
        return Promotion(promote=False, served=served, shadow=shadow,
                         reason=f"shadow MAE {shadow.mae_s:.0f} s is not below the "
                         f"incumbent's {served.mae_s:.0f} s")
    return Promotion(promote=True, served=served, shadow=shadow,
                     reason=f"shadow MAE {shadow.mae_s:.0f} s beats the incumbent's "
                     f"{served.mae_s:.0f} s over {shadow.orders} orders")
