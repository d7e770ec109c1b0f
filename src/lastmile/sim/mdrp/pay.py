"""Courier compensation of an MDRP solution, as Grubhub's evaluator computes it.

The evaluator (grubhub/mdrplib, ``MDRP_code/compute_performance_summary.py``) counts, for
every courier of ``couriers.txt``, the rows of ``solution_info_orders.txt`` whose
``courier`` column names that courier (a row naming no courier of the instance, ``NA``
included, counts for nobody; a feasible solution has a drop-off time on every counted
row), pays each courier ``max(pay per order x orders, guaranteed pay per hour x
(off_time - on_time) / 60)``, one who delivered nothing included, and prints the sum as
``total payment`` with two decimals. ``core.pay.mdrp`` configures the pay pipeline with
those rules; this module feeds it from the solution files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from lastmile.core.pay import PayStatement
from lastmile.core.pay.mdrp import mdrp_policy, mdrp_shift, mdrp_statements, total_payment
from lastmile.sim.mdrp.instance import Instance
from lastmile.sim.mdrp.solution import ORDERS_FILE, read_table


def delivered_from_solution(instance: Instance, out_dir: Path) -> dict[str, list[tuple[str, int]]]:
    """``courier id -> [(order id, drop-off minute)]`` read from ``solution_info_orders.txt``.

    Columns: order placement_time ready_time pickup_time dropoff_time courier. A row whose
    drop-off is ``NA`` but names a courier is counted, as the evaluator counts it (it
    also flags the solution infeasible); its minute is taken as 0.
    """
    known = {c.courier_id for c in instance.couriers}
    delivered: dict[str, list[tuple[str, int]]] = {}
    for row in read_table(out_dir / ORDERS_FILE):
        if len(row) < 6 or row[5] not in known:
            continue
        minute = int(float(row[4])) if row[4] != "NA" else 0
        delivered.setdefault(row[5], []).append((row[0], minute))
    return delivered


def courier_statements(instance: Instance,
                       delivered: Mapping[str, Sequence[tuple[str, int]]]
                       ) -> tuple[PayStatement, ...]:
    """One pay statement per courier of the instance, in ``couriers.txt`` order."""
    policy = mdrp_policy(pay_per_order=instance.params.pay_per_order,
                         pay_per_hour=instance.params.pay_per_hour)
    return mdrp_statements(policy, (
        mdrp_shift(courier_id=c.courier_id, on_time_min=c.on_time, off_time_min=c.off_time,
                   delivered=delivered.get(c.courier_id, ()))
        for c in instance.couriers))


def dollars(amount_minor: int) -> float:
    """Minor units as dollars with two decimals (the evaluator prints ``{:.2f}``)."""
    return float(Decimal(amount_minor).scaleb(-2))


def payment_metrics(statements: Sequence[PayStatement]) -> dict[str, object]:
    """``total_payment`` (dollars) and its parts, from the couriers' statements."""
    paid = total_payment(statements)
    return {
        "total_payment": dollars(paid.amount_minor),
        "total_payment_minor": paid.amount_minor,
        "couriers_paid": len(statements),
        "couriers_topped_up": sum(1 for s in statements if s.guaranteed),
        "guarantee_top_up": dollars(sum(s.top_up.amount_minor for s in statements)),
    }
