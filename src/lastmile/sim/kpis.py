"""KPIs of a simulated run, from the world's log (the same for in-process and HTTP runs).

Definitions (times in minutes, money in minor units of the city's currency):

- click-to-door: delivered_at - placed_at, over delivered orders (mean, p50, p90);
- lateness, the one definition (``core.eta.late``): delivered after the quoted window's
  high end (``late_share``, and ``late_mean_min``: mean minutes past it of those; the
  same share as ``past_window_share``, kept for older readers); and, not late but worth
  watching, delivered after the quoted point (``after_point_share``);
- ETA error: delivered_at - quoted expected, mean absolute and mean signed
  (positive = later than quoted);
- orders still open when the run ends (neither delivered nor cancelled) have
  no click-to-door, so the three lines above leave them out; they are reported
  instead, so a run that stops mid-backlog cannot look fast: how many
  (``orders_open_at_end``), how many already past their quoted expected time
  (``open_at_end_past_eta``: late for sure, by an unknown amount), and how long
  they had waited at the end (``open_at_end_age_min``, a lower bound of their
  click-to-door);
- utilisation: courier time holding orders (accept -> last drop-off) over
  on-shift time; orders per courier-hour: delivered / on-shift hours;
  ``courier_busy_min_per_order``: that time holding orders over delivered orders (a ride
  towards a merchant whose order was then moved away counts: it was spent);
- courier pay: the pay pipeline (``core.pay``, docs/pay.md) run on each courier's
  on-shift time and delivered orders (trip = merchant to drop-off as the crow flies,
  picked-up to delivered; the simulator has no tips): ``courier_pay_minor`` in total,
  per on-shift hour, and the share of couriers topped up to the guarantee; cost per
  order: courier pay / delivered orders;
- fee revenue: delivery + service + small-order fees of delivered orders.

The live path (``offer_kpis``, from the platform's offer events, ``app.acceptance.offer_trails``):

- ``offers_made``; of the offers closed by their courier or their clock (accepted,
  declined, expired; withdrawn ones, closed by a cancellation or a shift's end, are left
  out): ``acceptance_rate`` (accepted share) and ``expired_share`` (no answer in time);
- ``offers_per_order``: offers an order was in, mean over orders offered at least once;
- ``time_to_assignment_min``: placed -> the accepted offer's acceptance, over orders with
  one (median and p90; mean too);
- stacked orders (``docs/stacking.md``): ``stacks_offered`` and ``stacks_accepted``,
  ``stacked_orders_delivered`` and ``stacked_share`` (of delivered orders, those delivered
  from an accepted stack);
- reassignment (``docs/reassignment.md``): ``moves_offered`` (move offers made),
  ``moves_accepted`` and ``orders_moved`` (orders of accepted moves: each changed hands).

Money from the ledger (``ledger_kpis``; the platform's ledger subscriber posts the run's
order events, relayed like every subscriber's, and the KPIs are read back from its
postings through ``app.reports.ledger_totals``, docs/reports.md), in minor units of the
city's currency (the first currency when a run has several):

- ``ledger_gmv_minor``: what consumers were charged (captures and cancellation charges);
- ``ledger_fee_revenue_minor``: delivery, service and small-order fees charged;
- ``ledger_commission_minor``: the merchants' commission;
- ``ledger_courier_pay_minor``: trip pay and guarantee top-ups the platform paid couriers
  (tips are the couriers' own and are not in it);
- ``ledger_platform_net_minor``: platform revenue net of courier pay (minus the
  ``platform_revenue`` balance), ``ledger_take_rate`` = that / GMV;
- ``ledger_merchant_net_minor``: what the merchants are owed (minus the
  ``merchant_payable`` balances).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lastmile.core.eta import late
from lastmile.core.geo import haversine_m
from lastmile.core.ledger.settlement import Settlement
from lastmile.core.pay import DEFAULT_POLICY, DeliveredOrder, PayPolicy, PayStatement, ShiftWork
from lastmile.core.pay import statement as pay_statement
from lastmile.core.stats import quantile
from lastmile.sim.model import OrderRecord, WorldLog

if TYPE_CHECKING:
    from lastmile.app.acceptance import OfferTrail


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _open_at_end(orders: list[OrderRecord], end: float) -> dict[str, Any]:
    """What the delivered-only KPIs cannot see: orders neither delivered nor cancelled at ``end``."""
    still = [o for o in orders if o.delivered_at is None and o.cancelled_at is None]
    ages = [(end - o.placed_at) / 60 for o in still]
    return {
        "orders_open_at_end": len(still),
        "open_at_end_past_eta": sum(1 for o in still if end > o.eta_expected_at),
        "open_at_end_age_min": {"mean": _r(_mean(ages)), "max": _r(max(ages, default=None))},
    }


def _paid_order(o: OrderRecord, delivered_at: float) -> DeliveredOrder:
    distance = round(haversine_m(o.pickup, o.dropoff)) if o.pickup is not None else 0
    duration = round(delivered_at - o.picked_up_at) if o.picked_up_at is not None else 0
    return DeliveredOrder(order_id=o.id, delivered_at=delivered_at, distance_m=distance,
                          duration_s=max(duration, 0))


def courier_statements(log: WorldLog, policy: PayPolicy) -> list[PayStatement]:
    """One pay statement per simulated courier: its on-shift time, its delivered orders."""
    delivered: dict[str, list[DeliveredOrder]] = {}
    for o in log.orders.values():
        if o.courier_id is not None and o.delivered_at is not None:
            delivered.setdefault(o.courier_id, []).append(_paid_order(o, o.delivered_at))
    return [pay_statement(policy, ShiftWork(shift_id=cid, courier_id=cid,
                                            active_s=round(run.shift_s),
                                            orders=tuple(delivered.get(cid, ()))))
            for cid, run in sorted(log.couriers.items())]


def _pay_kpis(log: WorldLog, policy: PayPolicy, delivered: int, shift_h: float
              ) -> dict[str, Any]:
    statements = courier_statements(log, policy)
    paid = sum(s.total.amount_minor for s in statements)
    return {
        "courier_pay_minor": paid,
        "courier_pay_per_hour_minor": round(paid / shift_h) if shift_h else None,
        "courier_topped_up_share": _r(sum(s.guaranteed for s in statements) / len(statements), 3)
        if statements else None,
        "cost_per_order_minor": round(paid / delivered) if delivered else None,
    }


def compute_kpis(log: WorldLog, *, pay_policy: PayPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    orders = list(log.orders.values())
    done = [o for o in orders if o.delivered_at is not None]
    c2d = [(o.delivered_at - o.placed_at) / 60 for o in done if o.delivered_at is not None]
    err = [(o.delivered_at - o.eta_expected_at) / 60 for o in done if o.delivered_at is not None]
    after_point = [e for e in err if e > 0]
    late_by = [late.late_by_s(o.delivered_at, late.promised_end(o.eta_high_at)) / 60
               for o in done if o.delivered_at is not None
               and late.is_late(o.delivered_at, late.promised_end(o.eta_high_at))]
    shift_h = sum(r.shift_s for r in log.couriers.values()) / 3600
    busy_h = sum(r.busy_s for r in log.couriers.values()) / 3600
    cancelled = sum(1 for o in orders if o.cancelled_at is not None)
    n = len(done)
    return {
        "sim_hours": round((log.end - log.start) / 3600, 2),
        "quotes": log.quotes,
        "quotes_not_converted": log.lost_quotes,
        "orders_placed": len(orders),
        "orders_delivered": n,
        "orders_cancelled": cancelled,
        **_open_at_end(orders, log.end),
        "cancellation_rate": _r(cancelled / len(orders), 3) if orders else None,
        "click_to_door_min": {"mean": _r(_mean(c2d)), "p50": _r(quantile(c2d, 0.5)),
                              "p90": _r(quantile(c2d, 0.9))},
        "late_share": _r(len(late_by) / n, 3) if n else None,
        "late_mean_min": _r(_mean(late_by)),
        "past_window_share": _r(len(late_by) / n, 3) if n else None,
        "after_point_share": _r(len(after_point) / n, 3) if n else None,
        "eta_error_min": {"mean_abs": _r(_mean([abs(e) for e in err])), "bias": _r(_mean(err))},
        "courier_hours": round(shift_h, 2),
        "courier_utilisation": _r(busy_h / shift_h, 3) if shift_h else None,
        "orders_per_courier_hour": _r(n / shift_h) if shift_h else None,
        "courier_busy_min_per_order": _r(busy_h * 60 / n) if n else None,
        **_pay_kpis(log, pay_policy, n, shift_h),
        "fee_revenue_minor": sum(o.fees_minor for o in done),
        "refusals": dict(sorted(log.refusals.items())),
    }


def ledger_kpis(totals: Settlement) -> dict[str, Any]:
    """The money KPIs read off the ledger's postings (module docstring); zeros when the
    run charged nothing."""
    day = totals.platform[0] if totals.platform else None
    currency = day.currency if day is not None else None
    return {
        "ledger_currency": currency,
        "ledger_gmv_minor": day.gmv_minor if day else 0,
        "ledger_fee_revenue_minor": day.fees_minor if day else 0,
        "ledger_commission_minor": day.commission_minor if day else 0,
        "ledger_courier_pay_minor": day.courier_pay_minor if day else 0,
        "ledger_platform_net_minor": day.net_revenue_minor if day else 0,
        "ledger_take_rate": day.take_rate if day else None,
        "ledger_merchant_net_minor": sum(m.net_payable_minor for m in totals.merchants
                                         if m.currency == currency),
    }


def offer_kpis(log: WorldLog, trails: Sequence[OfferTrail]) -> dict[str, Any]:
    """The live path's offer KPIs (module docstring) of a run's offers."""
    answered = [t for t in trails if t.closed_as in ("accepted", "declined", "expired")]
    accepted = [t for t in answered if t.closed_as == "accepted"]
    per_order: dict[str, int] = {}
    assigned_at: dict[str, float] = {}
    for t in trails:
        for order_id in t.order_ids:
            per_order[order_id] = per_order.get(order_id, 0) + 1
    for t in accepted:  # an order's first acceptance, whatever order the trails come in
        for order_id in t.order_ids:
            if t.closed_at is not None:
                assigned_at[order_id] = min(t.closed_at, assigned_at.get(order_id, t.closed_at))
    waits = [(at - log.orders[oid].placed_at) / 60 for oid, at in assigned_at.items()
             if oid in log.orders]
    n = len(answered)
    stacks = [t for t in accepted if t.stacked]
    stacked = {oid for t in stacks for oid in t.order_ids
               if oid in log.orders and log.orders[oid].delivered_at is not None}
    moved = [t for t in accepted if t.from_courier_id is not None]
    return {
        "offers_made": len(trails),
        "acceptance_rate": _r(len(accepted) / n, 3) if n else None,
        "expired_share": _r(sum(1 for t in answered if t.closed_as == "expired") / n, 3)
        if n else None,
        "offers_per_order": _r(_mean([float(v) for v in per_order.values()])),
        "time_to_assignment_min": {"mean": _r(_mean(waits)), "p50": _r(quantile(waits, 0.5)),
                                   "p90": _r(quantile(waits, 0.9))},
        "stacks_offered": sum(1 for t in trails if t.stacked),
        "stacks_accepted": len(stacks),
        "stacked_orders_delivered": len(stacked),
        "stacked_share": _r(len(stacked) / log.delivered, 3) if log.delivered else None,
        "moves_offered": sum(1 for t in trails if t.from_courier_id is not None),
        "moves_accepted": len(moved),
        "orders_moved": sum(len(t.order_ids) for t in moved),
    }
