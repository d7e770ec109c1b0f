"""Payment use cases: authorise at placement, capture on delivery, void on cancellation
before capture, refund. The processor sits behind ``ports.PaymentProcessor``.

Every call that moves money carries an idempotency key: the API's ``Idempotency-Key``
or, for the platform's own steps, one derived from the order and the operation
(``core.payments.derived_key``). A time-out is retried at once with the same key
(``ATTEMPTS`` in all): the processor answers the first outcome, so a retry never charges
twice. The use cases return a ``PaymentMoved``: what moved, for the ledger to post
(issue 10 item 3; the posting is the caller's, not this module's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.ports import PaymentProcessor, UnitOfWork
from lastmile.app.sandbox import is_sandboxed, require_live_money
from lastmile.app.tenancy import acting_as
from lastmile.core.errors import Conflict, NotFound, PaymentTimedOut
from lastmile.core.money import Money
from lastmile.core.payments import (
    Payment,
    PaymentOp,
    PaymentStatus,
    ProcessorNotice,
    ProcessorResult,
    check_key,
    derived_key,
    reference_for,
)
from lastmile.core.tenancy import parse_tenant

ATTEMPTS = 3  # one call and two retries with the same key after a time-out
SANDBOX_PROCESSOR = "builtin"


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentMoved:
    """The hook for the ledger: the payment after the call and what the call moved."""

    payment: Payment
    result: ProcessorResult


def processor(services: Services, name: str | None = None) -> PaymentProcessor | None:
    """The processor for the current tenant: a test tenant's is the sandbox (built-in)
    one whatever the configuration; ``name`` picks the one an existing payment used."""
    live, sandbox = services.payments, services.sandbox_payments or services.payments
    if is_sandboxed(services):
        chosen = sandbox
        if chosen is not None and chosen.name != SANDBOX_PROCESSOR:
            require_live_money(services, what=f"a {chosen.name} payment")  # refuses
        return chosen
    if name is not None and live is not None and live.name != name:
        return sandbox if sandbox is not None and sandbox.name == name else live
    return live


def with_retries(call: Callable[[], ProcessorResult]) -> ProcessorResult:
    """``call`` (which reuses one idempotency key), again after a time-out, at most
    ``ATTEMPTS`` times; the last time-out is raised (503, retry later)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except PaymentTimedOut:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def authorise(services: Services, *, amount: Money, reference: str, idempotency_key: str,
              card_token: str | None = None) -> ProcessorResult | None:
    """Hold ``amount`` (None when no processor is configured). Declines raise 402
    ``payment_declined``; nothing is held then."""
    proc = processor(services)
    if proc is None:
        return None
    check_key(idempotency_key)
    return with_retries(lambda: proc.authorise(amount=amount, reference=reference,
                                               idempotency_key=idempotency_key,
                                               card_token=card_token))


def record_authorisation(uow: UnitOfWork, services: Services, *, order_id: str,
                         result: ProcessorResult, idempotency_key: str) -> Payment:
    """Add the order's payment in the caller's unit (with the order: both or neither)."""
    now = services.clock.now()
    payment = Payment(id=reference_for("pay", "", f"{result.processor_ref}"),
                      order_id=order_id, status=result.status, amount=result.amount,
                      processor=result.processor, processor_ref=result.processor_ref,
                      idempotency_key=idempotency_key, created_at=now, updated_at=now)
    uow.payments.add(payment)
    return payment


def payment_of(services: Services, order_id: str) -> Payment | None:
    with services.uow(read_only=True) as uow:
        return uow.payments.for_order(order_id)


def capture_order(services: Services, *, order_id: str, amount: Money | None = None,
                  idempotency_key: str | None = None) -> PaymentMoved | None:
    """Take the held money (all of it by default), on delivery. None: the order has no
    payment (placed without a processor)."""
    key = idempotency_key or derived_key(order_id, PaymentOp.CAPTURE)
    return _move(services, order_id, key, lambda p, proc: proc.capture(
        processor_ref=p.processor_ref, amount=amount or p.amount, idempotency_key=key))


def void_order(services: Services, *, order_id: str,
               idempotency_key: str | None = None) -> PaymentMoved | None:
    """Release the hold, on a cancellation before capture."""
    key = idempotency_key or derived_key(order_id, PaymentOp.VOID)
    return _move(services, order_id, key, lambda p, proc: proc.void(
        processor_ref=p.processor_ref, idempotency_key=key))


def refund_order(services: Services, *, order_id: str, amount_minor: int,
                 idempotency_key: str) -> PaymentMoved | None:
    """Give back ``amount_minor`` of a captured payment (in its currency)."""
    return _move(services, order_id, idempotency_key, lambda p, proc: proc.refund(
        processor_ref=p.processor_ref,
        amount=Money(amount_minor=amount_minor, currency=p.amount.currency),
        idempotency_key=idempotency_key))


def _move(services: Services, order_id: str, key: str,
          call: Callable[[Payment, PaymentProcessor], ProcessorResult]) -> PaymentMoved | None:
    check_key(key)
    payment = payment_of(services, order_id)
    if payment is None:
        return None
    proc = processor(services, payment.processor)
    if proc is None:
        raise NotFound("payment_processor_missing",
                       f"order {order_id} was paid through {payment.processor}, "
                       "which is not configured here")
    result = with_retries(lambda: call(payment, proc))
    for _ in range(ATTEMPTS):  # a concurrent step on the same payment: read it again
        try:
            with services.uow() as uow:
                current = uow.payments.for_order(order_id)
                if current is None:  # pragma: no cover - payments are never deleted
                    raise NotFound("payment_not_found", f"no payment for order {order_id}")
                updated = _applied(current, result, services.clock.now())
                if updated != current:
                    uow.payments.save(updated)
                    uow.commit()
            return PaymentMoved(payment=updated, result=result)
        except Conflict as exc:
            if exc.code != "concurrent_update":
                raise
    raise Conflict("concurrent_update", f"the payment of order {order_id} kept changing")


def _applied(p: Payment, result: ProcessorResult, now: float) -> Payment:
    """The record after ``result``. A replayed refund adds nothing: it was counted when
    first answered (unless that write was lost: the processor remains the truth)."""
    moved = result.amount.amount_minor
    if result.operation is PaymentOp.CAPTURE:
        return replace(p, status=PaymentStatus.CAPTURED, captured_minor=moved, updated_at=now)
    if result.operation is PaymentOp.VOID:
        return replace(p, status=PaymentStatus.VOIDED, updated_at=now)
    if result.operation is PaymentOp.REFUND and not result.replayed:
        refunded = p.refunded_minor + moved
        status = (PaymentStatus.REFUNDED if refunded >= p.captured_minor
                  else PaymentStatus.PARTIALLY_REFUNDED)
        return replace(p, status=status, refunded_minor=refunded, updated_at=now)
    return p


# What a processor's notice may change: only a step the platform has not recorded yet
# (e.g. a capture or cancel made in Stripe's dashboard); a notice never moves money.
_NOTICE_MOVES = {
    PaymentStatus.AUTHORISED: {PaymentStatus.CAPTURED, PaymentStatus.VOIDED},
    PaymentStatus.CAPTURED: {PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED},
    PaymentStatus.PARTIALLY_REFUNDED: {PaymentStatus.REFUNDED},
}


def apply_notice(services: Services, notice: ProcessorNotice) -> Payment | None:
    """Bring the payment a verified webhook names up to the status it reports, in the
    tenant it was made in. None: nothing to do (a type we ignore, a payment we do not
    know, or a status we already have or passed)."""
    if notice.status is None or notice.processor_ref is None or notice.tenant is None:
        return None
    with acting_as(parse_tenant(notice.tenant)), services.uow() as uow:
        current = uow.payments.for_processor_ref(notice.processor_ref)
        if current is None or notice.status not in _NOTICE_MOVES.get(current.status, set()):
            return None
        captured = (current.amount.amount_minor if notice.status is PaymentStatus.CAPTURED
                    else current.captured_minor)
        updated = replace(current, status=notice.status, captured_minor=captured,
                          updated_at=services.clock.now())
        uow.payments.save(updated)
        uow.commit()
        return updated


# The platform's own steps, as durable bus subscribers (bootstrap installs them): a
# capture or void that fails (a time-out past the retries) is retried by the relay with
# the same derived key, so it still moves the money once.
ON_DELIVERED = ("order.delivered", "payments-capture")  # (event type, subscriber)
ON_CANCELLED = ("order.cancelled", "payments-void")


def on_order_event(services: Services, event: Event) -> PaymentMoved | None:
    """Capture on ``order.delivered``; void on ``order.cancelled`` while the money is
    only held. Runs as the event's tenant; None: nothing to move (no payment, or already
    past the step). What a late cancellation still charges is the ledger's rule (issue 10
    item 3), not this hook's."""
    if event.type == ON_DELIVERED[0]:
        pay = payment_of(services, event.subject_id)
        if pay is None or pay.status is not PaymentStatus.AUTHORISED:
            return None
        return capture_order(services, order_id=event.subject_id)
    if event.type == ON_CANCELLED[0]:
        pay = payment_of(services, event.subject_id)
        if pay is None or pay.status is not PaymentStatus.AUTHORISED:
            return None
        return void_order(services, order_id=event.subject_id)
    return None
