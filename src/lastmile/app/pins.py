"""Drop-off PIN attempts: a courier gets ``MAX_PIN_FAILURES`` wrong PINs per order, then
PIN delivery of that order is locked and ops are told.

A 4-digit PIN has 10,000 values; unlimited tries at ~1 ms each would find it in
seconds. Each attempt is counted in its own transaction before the PIN is
compared (the counter row stays locked while it is judged, so parallel guesses
queue and none slips past the limit): a wrong PIN keeps its count (committed
even though the request fails), a right one is forgotten (rolled back) and the
delivery goes on. The attempt that reaches the limit records ``order.pin_locked``,
which queues a notice to ops; from then on every attempt, right or wrong, is
refused with 409 ``pin_locked`` until ops unlock it (``unlock_pin``) or cancel
the order. Attempts that fail for another reason (not the order's courier, not
at the drop-off, no PIN sent) are refused before counting.
"""

from __future__ import annotations

import hmac

from lastmile.app.context import Services, new_event, record
from lastmile.app.ports import UnitOfWork
from lastmile.core.errors import Conflict, InvalidInput, NotFound
from lastmile.core.lifecycle import Deliver, decide
from lastmile.core.orders import Actor, DeliveryProof, Order

MAX_PIN_FAILURES = 5


def _load(uow: UnitOfWork, order_id: str) -> Order:
    order = uow.orders.get(order_id)
    if order is None:
        raise NotFound("order_not_found", f"no order {order_id}", field="order_id")
    return order


def pin_locked(order_id: str) -> Conflict:
    return Conflict("pin_locked", f"PIN delivery of order {order_id} is locked after "
                    f"{MAX_PIN_FAILURES} wrong PINs; ops have been alerted and can unlock it",
                    field="pin", max_failures=MAX_PIN_FAILURES)


def check_dropoff_pin(services: Services, order_id: str, *, pin: str | None,
                      actor: Actor) -> None:
    """Count and judge one PIN attempt at ``order_id`` by ``actor`` (rules in the module doc).

    Returns when the order needs no PIN, no PIN was given (the lifecycle refuses that,
    uncounted) or the PIN is right; raises 422 ``pin_mismatch`` with ``attempts_left``,
    or 409 ``pin_locked``.
    """
    now = services.clock.now()
    with services.uow() as uow:
        order = _load(uow, order_id)
        if order.dropoff_pin is None or pin is None:
            return
        # Who and when first, with the right PIN: those refusals are not guesses.
        decide(order, Deliver(proof=DeliveryProof(pin=order.dropoff_pin)), actor=actor, now=now)
        count = uow.pin_attempts.count_attempt(order.id, now)
        if count > MAX_PIN_FAILURES:
            raise pin_locked(order.id)  # rolled back: a locked order counts nothing more
        if hmac.compare_digest(pin.encode(), order.dropoff_pin.encode()):
            return  # rolled back: a right PIN is not a failure
        _record_failure(uow, services, order, actor, count)
        uow.commit()
    if count >= MAX_PIN_FAILURES:
        raise pin_locked(order_id)
    left = MAX_PIN_FAILURES - count
    raise InvalidInput("pin_mismatch", f"order {order_id} requires the consumer's drop-off PIN; "
                       f"the pin given does not match ({left} attempts left before PIN "
                       "delivery is locked)", field="proof.pin", attempts_left=left)


def _record_failure(uow: UnitOfWork, services: Services, order: Order, actor: Actor,
                    count: int) -> None:
    data: dict[str, object] = {"failures": count, "max_failures": MAX_PIN_FAILURES}
    kinds = ("order.pin_rejected",) + (("order.pin_locked",) if count == MAX_PIN_FAILURES
                                       else ())
    for kind in kinds:  # the PIN given is never in an event
        record(uow, services, new_event(
            services, type=kind, region_id=order.region_id, subject_id=order.id,
            actor_kind=actor.kind.value, actor_id=actor.id, data=data))


def unlock_pin(services: Services, order_id: str, *, actor: Actor) -> int:
    """Ops: forget the order's wrong PINs (e.g. after calling the consumer); how many there were."""
    with services.uow() as uow:
        order = _load(uow, order_id)
        had = uow.pin_attempts.reset(order.id)
        if had:
            record(uow, services, new_event(
                services, type="order.pin_unlocked", region_id=order.region_id,
                subject_id=order.id, actor_kind=actor.kind.value, actor_id=actor.id,
                data={"failures": had}))
        uow.commit()
    return had
