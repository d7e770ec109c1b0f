"""Loading aggregates in a unit of work, and moving an order one step (shared by use cases)."""

from __future__ import annotations

from lastmile.app.context import Services, record_transition
from lastmile.app.eta_history import record_finish
from lastmile.app.ports import UnitOfWork
from lastmile.core.errors import NotFound
from lastmile.core.lifecycle import Command, decide
from lastmile.core.model import Courier
from lastmile.core.orders import Actor, Order


def load_order(uow: UnitOfWork, order_id: str) -> Order:
    order = uow.orders.get(order_id)
    if order is None:
        raise NotFound("order_not_found", f"no order {order_id}", field="order_id")
    return order


def load_courier(uow: UnitOfWork, courier_id: str) -> Courier:
    courier = uow.couriers.get(courier_id)
    if courier is None:
        raise NotFound("courier_not_found", f"no courier {courier_id}", field="courier_id")
    return courier


def apply_command(uow: UnitOfWork, services: Services, order: Order, command: Command,
                  actor: Actor) -> Order:
    """Decide, save with optimistic locking, record the event (and, when the order ends,
    its ETA history record); the caller commits."""
    nxt, transition = decide(order, command, actor=actor, now=services.clock.now())
    uow.orders.save(nxt, expected_version=order.version)
    record_transition(uow, services, order.region_id, transition)
    if nxt.terminal:
        record_finish(uow, services, nxt)
    return nxt
