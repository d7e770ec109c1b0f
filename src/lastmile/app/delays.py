"""Late orders: tell everyone once when an order passes the end of its quoted window."""

from __future__ import annotations

from lastmile.app.context import Services, new_event, record
from lastmile.core.eta import late
from lastmile.core.orders import TERMINAL, OrderStatus

OPEN = tuple(sorted(set(OrderStatus) - TERMINAL))
INBOX = "order-delayed"  # inbox consumer name: one ``order.delayed`` per order, ever


def flag_late_orders(services: Services, *, limit: int = 1_000) -> int:
    """Record ``order.delayed`` for each open order now past ``eta.high_at``; returns how many.

    Once per order (the inbox keeps which were flagged), so the consumer, merchant
    and courier hear "running late" once, however often this runs. Looks at the
    ``limit`` oldest open orders: the latest ones cannot be past their window first.
    """
    now = services.clock.now()
    flagged = 0
    with services.uow() as uow:
        for order in uow.orders.list(statuses=OPEN, limit=limit, oldest_first=True):
            end = late.promised_end(order.eta.high_at)
            if not late.is_late(now, end) or uow.inbox.seen(INBOX, order.id):
                continue
            record(uow, services, new_event(
                services, type="order.delayed", region_id=order.region_id,
                subject_id=order.id, actor_kind="system", actor_id="system",
                data={"status": order.status.value, "courier_id": order.courier_id,
                      "eta_high_at": order.eta.high_at, "late_by_s": late.late_by_s(now, end)}))
            flagged += 1
        uow.commit()
    return flagged
