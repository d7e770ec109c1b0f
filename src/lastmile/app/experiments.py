"""Experiments served to the platform's levers (docs/experiments.md).

- ``create`` / ``start`` / ``stop`` / ``get`` / ``list_experiments``: the definition in the
  database, per tenant; states draft -> running -> stopped (draft -> stopped too).
- ``variant(services, experiment, unit, context)``: the one call a lever makes. It gives
  the unit's arm of a running experiment (None: the experiment is not running, or the
  unit is held out, outside its layer range, or not in its allocation; the lever then
  keeps its default) and records the exposure: one row per experiment and randomised unit
  (a consumer, a courier, a ``region@window``), the first one kept. Served experiments
  come from a per-process cache (``ExperimentCache``, a few seconds; a start or stop in
  this process is seen at once), and units already recorded by this process are not
  written again.
- ``overrides(services, lever, context)``: every running experiment of a lever, each
  asked through ``variant`` for the unit it randomises, their params merged: the
  dispatch round, the quote's fees and the ETA model read their knobs this way.

Exposures are written in the caller's unit of work when it is a writable one (an order's
placement: the exposure commits with the order), else in a unit of their own (a quote or
a dispatch round, which read only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lastmile.app.context import Services, new_event, record
from lastmile.app.experiment_cache import ExperimentCache, Served
from lastmile.app.ports import UnitOfWork
from lastmile.app.ports_experiments import Exposure
from lastmile.app.tenancy import current_tenant
from lastmile.app.tenants import config_of, pricing_in, tenant_in
from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.errors import Conflict, DomainError, InvalidInput, NotFound
from lastmile.core.experiments.assignment import (
    Span,
    Variant,
    allocate,
    in_layer,
    stratify,
)
from lastmile.core.experiments.definition import (
    DESIGN_UNITS,
    NAME,
    Assignment,
    Context,
    Experiment,
    Layer,
    State,
    UnitKind,
    assignment,
    dispatch_with,
    pricing_with,
)
from lastmile.core.experiments.observations import Design

EXPOSED_EVENT = "experiment.exposed"
"""Published with every exposure row, in its transaction (docs/experiments.md)."""
MAX_LIST = 500
MAX_RUNNING = 200
STRATA_DAYS = 28  # four whole weeks: no day-of-week imbalance (seed 003 rounds to weeks)
MAX_STRATA_ORDERS = 1_000_000


def _cache(services: Services) -> ExperimentCache:
    return services.experiments


# -- definitions ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class NewExperiment:
    name: str
    lever: str
    design: Design
    variants: tuple[Variant, ...]
    unit: UnitKind | None = None
    """Default: the design's (``consumer`` for ``ab``)."""
    layer: str | None = None
    """Default: a layer of its own (exclusive with nothing)."""
    holdout: float | None = None
    """The layer's holdout share, set by its first experiment."""
    share: float = 1.0
    """The share of the layer (after its holdout) the experiment takes."""
    window_s: float = 3_600.0
    burn_in_s: float = 0.0
    wash_out_s: float = 0.0
    strata_metrics: Mapping[str, Sequence[float]] | None = None
    """Market A/B: per market (region id) the metrics to stratify on, each levelled in
    terciles; None: every region's orders and mean click-to-door over four weeks."""
    salt: str | None = None
    description: str = ""


def create(services: Services, spec: NewExperiment) -> Experiment:
    """A draft experiment: its layer range allocated (first fit after the holdout), a
    market A/B's allocation stratified. 409 ``experiment_name_taken``; 422 naming the
    field for a definition that breaks a rule."""
    now = services.clock.now()
    exp_id = services.ids.new("exp")
    if spec.design not in DESIGN_UNITS:
        raise InvalidInput("invalid_design", f"design must be one of "
                           f"{', '.join(DESIGN_UNITS)} (got {spec.design!r})", field="design")
    unit = spec.unit or DESIGN_UNITS[spec.design][0]
    if len(spec.description) > 500:
        raise InvalidInput("invalid_description", f"description must be at most 500 "
                           f"characters (got {len(spec.description)})", field="description")
    if not NAME.match(spec.name):
        raise InvalidInput("invalid_name", f"name must be 1-63 lowercase letters, digits, _ "
                           f"or - starting with a letter or digit (got {spec.name!r})",
                           field="name")
    layer_name = spec.layer or f"_{spec.name}"
    with services.uow() as uow:
        if uow.experiments.by_name(spec.name) is not None:
            raise Conflict("experiment_name_taken", f"an experiment is named {spec.name} "
                           "already", field="name")
        layer = _layer(uow, layer_name, spec.holdout, now)
        peers = [e for e in uow.experiments.list(layer=layer_name, limit=MAX_LIST)
                 if e.state is not State.STOPPED]
        others = sorted({e.unit_kind for e in peers} - {unit})
        if others:
            raise InvalidInput("layer_unit_mismatch", f"layer {layer_name} randomises "
                               f"{others[0]}, not {unit}: a layer's experiments share their "
                               f"unit", field="layer")
        span = allocate([e.span for e in peers], holdout=layer.holdout, share=spec.share)
        draft = Experiment(
            id=exp_id, name=spec.name, lever=spec.lever, design=spec.design, unit_kind=unit,
            variants=spec.variants, salt=spec.salt or exp_id, layer=layer_name, span=span,
            window_s=spec.window_s, burn_in_s=spec.burn_in_s, wash_out_s=spec.wash_out_s,
            description=spec.description, created_at=now)
        if spec.design == "market_ab":
            metrics = spec.strata_metrics or market_metrics(uow, now)
            draft = replace(draft, allocation=_allocation(draft, metrics, span))
        elif spec.strata_metrics:
            raise InvalidInput("invalid_strata", "strata_metrics is for market_ab only",
                               field="strata_metrics")
        _fits_the_tenant(uow, services, draft)
        if not uow.experiments.add(draft):
            raise Conflict("experiment_name_taken", f"an experiment is named {spec.name} "
                           "already", field="name")
        uow.commit()
    return draft


def _fits_the_tenant(uow: UnitOfWork, services: Services, e: Experiment) -> None:
    """Each arm's params on the tenant's own policies (its fees, each region's, its dispatch
    knobs) keep the policies' rules: checked here, not found by a consumer's quote."""
    base = DispatchPolicy()
    for i, v in enumerate(e.variants):
        try:
            if e.lever == "fees":
                for region in [None, *(r.id for r in uow.regions.list())]:
                    pricing_with(pricing_in(uow, services, region), v.config)
            elif e.lever == "dispatch":
                dispatch_with(config_of(tenant_in(uow, services)).dispatch_policy(base),
                              v.config)
        except DomainError as exc:
            raise InvalidInput("invalid_params", f"variant {v.name} on this tenant's policy: "
                               f"{exc.message}", field=f"variants[{i}].params") from exc


def _layer(uow: UnitOfWork, name: str, holdout: float | None, now: float) -> Layer:
    found = uow.experiments.layer(name)
    if found is None:
        found = Layer(name=name, holdout=holdout or 0.0)
        if not uow.experiments.add_layer(found, at=now):
            raise Conflict("concurrent_update", f"layer {name} was created meanwhile; retry")
    elif holdout is not None and holdout != found.holdout:
        raise Conflict("layer_holdout_differs", f"layer {name} holds out {found.holdout}, "
                       f"not {holdout}: a layer's holdout is set by its first experiment",
                       field="holdout")
    return found


def market_metrics(uow: UnitOfWork, now: float) -> dict[str, list[float]]:
    """Per region of the tenant, the two metrics a market A/B stratifies on when the caller
    gives none: orders placed over the last ``STRATA_DAYS`` days and their mean
    click-to-door minutes (0 for a region with no delivered order)."""
    since = now - STRATA_DAYS * 86_400.0
    out: dict[str, list[float]] = {}
    for region in uow.regions.list():
        orders = [o for o in uow.orders.list(region_id=region.id, limit=MAX_STRATA_ORDERS)
                  if o.placed_at >= since]
        c2d = [(o.delivered_at - o.placed_at) / 60.0 for o in orders
               if o.delivered_at is not None]
        out[region.id] = [float(len(orders)), sum(c2d) / len(c2d) if c2d else 0.0]
    return out


def _allocation(draft: Experiment, metrics: Mapping[str, Sequence[float]] | None,
                span: Span) -> Any:
    if not metrics:
        raise InvalidInput("invalid_strata", "a market_ab experiment needs markets: give "
                           "strata_metrics, or create regions first", field="strata_metrics")
    inside = {m: v for m, v in metrics.items() if in_layer(draft.layer, m, span)}
    if not inside:
        raise InvalidInput("invalid_strata", f"none of the {len(metrics)} markets falls in "
                           f"the experiment's share of its layer", field="strata_metrics")
    return stratify(draft.salt, inside, [v.name for v in draft.variants])


def get(services: Services, ref: str) -> Experiment:
    """An experiment by id or by name (404 ``experiment_not_found``)."""
    with services.uow(read_only=True) as uow:
        found = uow.experiments.get(ref) or uow.experiments.by_name(ref)
    if found is None:
        raise NotFound("experiment_not_found", f"no experiment {ref}", field="experiment")
    return found


def list_experiments(services: Services, *, state: State | None = None,
                     limit: int = 100) -> list[Experiment]:
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput("invalid_limit", f"limit must be in [1, {MAX_LIST}] (got {limit})",
                           field="limit")
    with services.uow(read_only=True) as uow:
        return uow.experiments.list(state=state, limit=limit)


def start(services: Services, ref: str) -> Experiment:
    """draft -> running; switchback windows count from now."""
    return _move(services, ref, State.RUNNING)


def stop(services: Services, ref: str) -> Experiment:
    """running (or draft) -> stopped; its layer range is free for new experiments."""
    return _move(services, ref, State.STOPPED)


def _move(services: Services, ref: str, to: State) -> Experiment:
    current = get(services, ref)
    moved = current.moved(to, at=services.clock.now())
    with services.uow() as uow:
        if not uow.experiments.move(moved, expected=current.state):
            raise Conflict("concurrent_update", f"experiment {current.name} changed "
                           "meanwhile; retry", current_state="changed")
        uow.commit()
    _cache(services).forget(current_tenant())
    return moved


# -- serving -------------------------------------------------------------------------------

def running(services: Services, uow: UnitOfWork | None = None) -> dict[str, Served]:
    """The current tenant's running experiments by name, from the process's cache."""
    def load() -> dict[str, Served]:
        if uow is not None:
            return _load(uow)
        with services.uow(read_only=True) as own:
            return _load(own)

    return _cache(services).running(current_tenant(), now=services.clock.now(), load=load)


def _load(uow: UnitOfWork) -> dict[str, Served]:
    out: dict[str, Served] = {}
    for e in uow.experiments.list(state=State.RUNNING, limit=MAX_RUNNING):
        layer = uow.experiments.layer(e.layer)
        out[e.name] = Served(experiment=e, holdout=0.0 if layer is None else layer.holdout)
    return out


def variant(services: Services, experiment: str, unit: str, context: Context, *,
            uow: UnitOfWork | None = None) -> Assignment | None:
    """The arm of ``unit`` in the running experiment named ``experiment`` at
    ``context.at_s``, its exposure recorded (once per randomised unit); None when the
    experiment does not serve the unit (not running, held out, outside its range)."""
    served = running(services, uow).get(experiment)
    if served is None:
        return None
    got = assignment(served.experiment, unit, context.at_s, holdout=served.holdout)
    if got is None:
        return None
    _expose(services, got, context, uow)
    return got


def _expose(services: Services, got: Assignment, context: Context,
            uow: UnitOfWork | None) -> None:
    cache = _cache(services)
    key = (current_tenant(), got.experiment_id, got.unit)
    if cache.seen(key):
        return
    exposure = Exposure(experiment_id=got.experiment_id, unit=got.unit,
                        variant=got.variant.name, counts=got.counts, first_at=context.at_s,
                        region_id=context.region_id)
    if uow is not None and not uow.read_only:
        # The caller's transaction: it commits (or not) with the caller's work, so the
        # process does not remember it as recorded.
        _record(uow, services, exposure)
        return
    with services.uow() as own:
        _record(own, services, exposure)
        own.commit()
    cache.mark(key)


def _record(uow: UnitOfWork, services: Services, exposure: Exposure) -> None:
    """The exposure row and, when it is the unit's first, an ``experiment.exposed`` event
    (history and outbox) in the same transaction: both commit or neither does."""
    if not uow.experiments.expose(exposure):
        return
    record(uow, services, new_event(
        services, type=EXPOSED_EVENT, region_id=exposure.region_id or "",
        subject_id=exposure.unit, actor_kind="system", actor_id="experiments", data={
            "experiment_id": exposure.experiment_id, "unit": exposure.unit,
            "variant": exposure.variant, "counts": exposure.counts,
            "first_at": exposure.first_at}))


def overrides(services: Services, lever: str, context: Context, *,
              uow: UnitOfWork | None = None) -> dict[str, Any]:
    """The params of every running experiment of ``lever`` that serves the context's
    units, merged in name order (a layer keeps two experiments of one lever off the same
    unit; across layers the later name wins a key both set)."""
    out: dict[str, Any] = {}
    for name, served in sorted(running(services, uow).items()):
        e = served.experiment
        if e.lever != lever:
            continue
        unit = context.unit(e.unit_kind)
        if unit is None:
            continue
        got = variant(services, name, unit, context, uow=uow)
        if got is not None:
            out.update(got.config)
    return out
