"""An experiment's observations from the database: its exposures joined with the orders
they led to, one ``core.experiments.observations.Observation`` per analysis unit.

Per order the metrics are ``click_to_door_min`` (delivered orders: delivery minus
placement, minutes), ``delivery_fee_minor`` (every order) and ``delivered`` (finished
orders: 1 delivered, 0 cancelled). An analysis unit sums its orders' values (``value``)
over their count (``denominator``), so a consumer's or a courier's many orders make a ratio
metric, which the analysis treats with the delta method.

- ``ab`` by consumer: each exposed consumer's orders placed from the first exposure until
  the experiment stopped; the covariate (CUPED) is the consumer's mean over as long a
  period before the start, when it had orders then.
- ``ab`` by order: each exposed order.
- ``courier_ab``: each exposed courier's orders (clustered by courier).
- ``switchback``: each exposed ``region@window``'s orders placed in it, outside a burn-in
  or wash-out (the same rule the serving used); clustered by the window.
- ``market_ab``: each allocated market's orders, before the start (``pre``, as long as the
  experiment ran) and after (``post``), with its stratum: the diff-in-diff's input.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable

from lastmile.app import experiments
from lastmile.app.context import Services
from lastmile.app.ports import UnitOfWork
from lastmile.app.ports_experiments import Exposure
from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.experiments import stats
from lastmile.core.experiments.assignment import switchback
from lastmile.core.experiments.definition import Experiment
from lastmile.core.experiments.observations import Analysis, Observation
from lastmile.core.orders import Order, OrderStatus

METRICS = ("click_to_door_min", "delivery_fee_minor", "delivered")
SHORT_DATA = frozenset({"control_missing", "variant_missing", "too_few_units",
                        "too_few_clusters", "period_missing", "did_cell_missing"})
"""The statistics' codes for observations too few to analyse yet: a 409 from ``analyze``
(the same request succeeds later), not a 422 (nothing in the request is wrong)."""
MAX_EXPOSURES = 1_000_000
MAX_ORDERS = 5_000_000  # per region and period


def order_value(order: Order, metric: str) -> float | None:
    """The order's value of ``metric``; None when the order has none (yet)."""
    if metric == "click_to_door_min":
        if order.status is not OrderStatus.DELIVERED or order.delivered_at is None:
            return None
        return (order.delivered_at - order.placed_at) / 60.0
    if metric == "delivery_fee_minor":
        return float(order.prices.delivery_fee.amount_minor)
    if metric == "delivered":
        if not order.terminal:
            return None
        return 1.0 if order.status is OrderStatus.DELIVERED else 0.0
    raise InvalidInput("invalid_metric", f"metric must be one of {', '.join(METRICS)} (got "
                       f"{metric!r})", field="metric")


def observations(services: Services, ref: str, *,
                 metric: str = "click_to_door_min") -> tuple[Observation, ...]:
    """The experiment's observations of ``metric`` (see the module docstring), sorted by
    unit. 409 ``experiment_not_started`` for a draft; 422 for an unknown metric or an
    interleaving experiment (its observations come from the feed's items, not orders)."""
    if metric not in METRICS:
        raise InvalidInput("invalid_metric", f"metric must be one of {', '.join(METRICS)} "
                           f"(got {metric!r})", field="metric")
    e = experiments.get(services, ref)
    if e.started_at is None:
        raise Conflict("experiment_not_started", f"experiment {e.name} has not started: "
                       "there is nothing to analyse", current_state=e.state.value)
    if e.design == "interleaving":
        raise InvalidInput("unsupported_design", "an interleaving experiment is analysed "
                           "from the feed's items, not from orders", field="experiment")
    # Until it stopped (a running one: every order so far); the pre-period is as long.
    end = e.stopped_at if e.stopped_at is not None else math.inf
    ran_s = (e.stopped_at if e.stopped_at is not None else services.clock.now()) - e.started_at
    with services.uow(read_only=True) as uow:
        seen = uow.experiments.exposures(e.id, limit=MAX_EXPOSURES)
        orders = _orders(uow, e.started_at - ran_s, end)
    def value(o: Order) -> float | None:
        return order_value(o, metric)
    if e.design == "switchback":
        return _switchback(e, seen, orders, value)
    if e.design == "market_ab":
        return _market(e, orders, value)
    if e.unit_kind == "order":
        return _per_order(seen, orders, value)
    return _per_unit(e, seen, orders, value, end)


def _orders(uow: UnitOfWork, since: float, until: float) -> list[Order]:
    out: list[Order] = []
    for region in uow.regions.list():
        out += [o for o in uow.orders.list(region_id=region.id, limit=MAX_ORDERS,
                                           oldest_first=True)
                if since <= o.placed_at < until or o.placed_at == since == until]
    return out


Value = Callable[[Order], float | None]


def _sum(rows: Iterable[float | None]) -> tuple[float, int]:
    got = [v for v in rows if v is not None]
    return sum(got), len(got)


def _per_order(seen: list[Exposure], orders: list[Order], value: Value
               ) -> tuple[Observation, ...]:
    by_id: dict[str, Order] = {o.id: o for o in orders}
    out = []
    for x in seen:
        order = by_id.get(x.unit)
        v = None if order is None else value(order)
        if v is not None and x.counts:
            out.append(Observation(unit=x.unit, variant=x.variant, value=v,
                                   time_s=x.first_at))
    return tuple(sorted(out, key=lambda o: o.unit))


def _per_unit(e: Experiment, seen: list[Exposure], orders: list[Order], value: Value,
              end: float) -> tuple[Observation, ...]:
    """Consumers (``ab``) or couriers (``courier_ab``): orders from the first exposure."""
    def key(o: Order) -> str | None:
        return o.courier_id if e.unit_kind == "courier" else o.consumer_id
    assert e.started_at is not None
    post: dict[str, list[Order]] = defaultdict(list)
    pre: dict[str, list[Order]] = defaultdict(list)
    for o in orders:
        k = key(o)
        if k is not None:
            (post if o.placed_at >= e.started_at else pre)[k].append(o)
    out = []
    for x in seen:
        total, n = _sum(value(o) for o in post.get(x.unit, ()) if x.first_at <= o.placed_at < end)
        if n == 0:
            continue
        before, m = _sum(value(o) for o in pre.get(x.unit, ()))
        out.append(Observation(
            unit=x.unit, variant=x.variant, value=total, denominator=float(n),
            cluster=x.unit if e.unit_kind == "courier" else None,
            covariate=before / m if m else None, time_s=x.first_at - e.started_at))
    return tuple(sorted(out, key=lambda o: o.unit))


def _switchback(e: Experiment, seen: list[Exposure], orders: list[Order], value: Value
                ) -> tuple[Observation, ...]:
    exposed = {x.unit: x for x in seen}
    sums: dict[str, list[float]] = defaultdict(list)
    window: dict[str, int] = {}
    for o in orders:
        slot = switchback(e.salt, o.region_id, o.placed_at, e.timing, e.variants)
        if slot is None or not slot.counts or slot.unit not in exposed:
            continue
        v = value(o)
        if v is not None:
            sums[slot.unit].append(v)
            window[slot.unit] = slot.window
    return tuple(
        Observation(unit=unit, variant=exposed[unit].variant, value=sum(vals),
                    denominator=float(len(vals)), cluster=unit,
                    time_s=window[unit] * e.window_s)
        for unit, vals in sorted(sums.items()))


def _market(e: Experiment, orders: list[Order], value: Value) -> tuple[Observation, ...]:
    assert e.started_at is not None
    slots = {s.market: s for s in e.allocation}
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    for o in orders:
        if o.region_id not in slots:
            continue
        v = value(o)
        if v is not None:
            sums[(o.region_id, "pre" if o.placed_at < e.started_at else "post")].append(v)
    out = []
    for (market, period), vals in sorted(sums.items()):
        slot = slots[market]
        out.append(Observation(unit=market, variant=slot.variant, value=sum(vals),
                               denominator=float(len(vals)), cluster=market,
                               period="pre" if period == "pre" else "post",
                               stratum=slot.stratum))
    return tuple(out)


def analyze(services: Services, ref: str, *, metric: str = "click_to_door_min",
            alpha: float = 0.05) -> Analysis:
    """The experiment's ``Analysis`` of ``metric``: its observations through
    ``core.experiments.stats.analyze`` with its design. 422 for ``alpha`` outside (0, 0.5];
    409 ``no_observations`` before any, ``not_enough_observations`` while they are too few
    (``SHORT_DATA``)."""
    if not (math.isfinite(alpha) and 0.0 < alpha <= 0.5):
        raise InvalidInput("invalid_alpha", f"alpha must be in (0, 0.5] (got {alpha})",
                           field="alpha")
    e = experiments.get(services, ref)
    obs = observations(services, e.id, metric=metric)
    if not obs:
        raise Conflict("no_observations", f"experiment {e.name} has no {metric} "
                       "observations yet", current_state=e.state.value)
    try:
        return stats.analyze(obs, design=e.design, alpha=alpha)
    except InvalidInput as exc:
        if exc.code not in SHORT_DATA:
            raise
        # The data, not the request, is short: the same call succeeds once both arms have
        # observations.
        raise Conflict("not_enough_observations", f"experiment {e.name}: {exc.message}",
                       current_state=e.state.value) from exc
