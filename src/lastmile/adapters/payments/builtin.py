"""The built-in payment processor: authorisation holds, capture, void and refund, kept in
the ``processor_calls`` table under each call's idempotency key.

It is the embedded default and every test tenant's processor (``app.sandbox``). Its
``DeclinePolicy`` (``core.payments``) injects declines (test card tokens, an amount limit,
a share at random) and time-outs, before or after the money moved, from an injected
``random.Random``: the simulator's card failures and the tests' lost answers.

Idempotency: a call whose key was answered before gets that answer back (``replayed``)
and moves nothing; two calls with one key at once meet the table's primary key, one
writes, the other reads what it wrote. A decline is not remembered: the same key asks
again (the rules are the same, so the answer is too, chance aside).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from lastmile.app.ports import UnitOfWork, UnitOfWorkFactory
from lastmile.app.tenancy import current_tenant
from lastmile.core.errors import Conflict, InvalidInput, NotFound, PaymentDeclined, PaymentTimedOut
from lastmile.core.money import Money
from lastmile.core.payments import (
    DeclinePolicy,
    PaymentOp,
    PaymentStatus,
    ProcessorCall,
    ProcessorResult,
    check_key,
    reference_for,
)

NAME = "builtin"


class BuiltinProcessor:
    name = NAME

    def __init__(self, *, uow: UnitOfWorkFactory, now: Callable[[], float],
                 policy: DeclinePolicy | None = None, rng: random.Random | None = None):
        self._uow = uow
        self._now = now
        self.policy = policy or DeclinePolicy()
        # Its own generator: the services' rng (PINs) keeps its sequence.
        self._rng = rng or random.Random(0)

    def authorise(self, *, amount: Money, reference: str, idempotency_key: str,
                  card_token: str | None = None) -> ProcessorResult:
        if amount.amount_minor <= 0:
            raise InvalidInput("invalid_amount",
                               f"an authorisation must be > 0 (got {amount.amount_minor})",
                               field="amount_minor")

        def hold(uow: UnitOfWork) -> ProcessorResult:
            reason = self.policy.decline_reason(amount=amount, card_token=card_token,
                                                rng=self._rng)
            if reason is not None:
                raise PaymentDeclined(f"the card was declined ({reason}) for {reference}",
                                      reason=reason)
            ref = reference_for("bip", current_tenant(), idempotency_key)
            return self._result(ref, PaymentOp.AUTHORISE, PaymentStatus.AUTHORISED, amount)

        return self._call(idempotency_key, reference, PaymentOp.AUTHORISE, hold)

    def capture(self, *, processor_ref: str, amount: Money,
                idempotency_key: str) -> ProcessorResult:
        def take(uow: UnitOfWork) -> ProcessorResult:
            held, status = _state(uow, processor_ref)
            if status is not PaymentStatus.AUTHORISED:
                raise Conflict("payment_not_capturable",
                               f"payment {processor_ref} is {status.value}; only an "
                               "authorised payment can be captured",
                               current_state=status.value)
            if not 0 < amount.amount_minor <= held.amount_minor or amount.currency != held.currency:
                raise InvalidInput("invalid_amount",
                                   f"capture must be in (0, {held.amount_minor}] {held.currency} "
                                   f"(got {amount.amount_minor} {amount.currency})",
                                   field="amount_minor")
            return self._result(processor_ref, PaymentOp.CAPTURE, PaymentStatus.CAPTURED, amount)

        return self._call(idempotency_key, processor_ref, PaymentOp.CAPTURE, take)

    def void(self, *, processor_ref: str, idempotency_key: str) -> ProcessorResult:
        def release(uow: UnitOfWork) -> ProcessorResult:
            held, status = _state(uow, processor_ref)
            if status is not PaymentStatus.AUTHORISED:
                raise Conflict("payment_not_voidable",
                               f"payment {processor_ref} is {status.value}; only an "
                               "authorised payment can be voided", current_state=status.value)
            return self._result(processor_ref, PaymentOp.VOID, PaymentStatus.VOIDED, held)

        return self._call(idempotency_key, processor_ref, PaymentOp.VOID, release)

    def refund(self, *, processor_ref: str, amount: Money,
               idempotency_key: str) -> ProcessorResult:
        def give_back(uow: UnitOfWork) -> ProcessorResult:
            calls = uow.processor_calls.for_ref(processor_ref)
            _, status = _state(uow, processor_ref)
            captured = sum(c.result.amount.amount_minor for c in calls
                           if c.result.operation is PaymentOp.CAPTURE)
            refunded = sum(c.result.amount.amount_minor for c in calls
                           if c.result.operation is PaymentOp.REFUND)
            if status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
                raise Conflict("payment_not_refundable",
                               f"payment {processor_ref} is {status.value}; only a captured "
                               "payment can be refunded", current_state=status.value)
            left = captured - refunded
            if not 0 < amount.amount_minor <= left:
                raise InvalidInput("refund_exceeds_capture",
                                   f"refund must be in (0, {left}] (got {amount.amount_minor}) "
                                   f"for payment {processor_ref}", field="amount_minor")
            done = (PaymentStatus.REFUNDED if amount.amount_minor == left
                    else PaymentStatus.PARTIALLY_REFUNDED)
            return self._result(processor_ref, PaymentOp.REFUND, done, amount)

        return self._call(idempotency_key, processor_ref, PaymentOp.REFUND, give_back)

    def _result(self, ref: str, op: PaymentOp, status: PaymentStatus,
                amount: Money) -> ProcessorResult:
        return ProcessorResult(processor=NAME, processor_ref=ref, operation=op, status=status,
                               amount=amount)

    def _call(self, key: str, reference: str, op: PaymentOp,
              act: Callable[[UnitOfWork], ProcessorResult]) -> ProcessorResult:
        check_key(key)
        stall = self.policy.timeout(self._rng)
        if stall == "before":
            raise PaymentTimedOut(f"the built-in processor did not answer the {op.value} "
                                  f"of {reference} in time (nothing moved)")
        try:
            with self._uow() as uow:
                seen = _replay(uow, key, op)
                if seen is not None:
                    return seen
                result = act(uow)
                uow.processor_calls.add(ProcessorCall(key=key, reference=reference,
                                                      result=result, created_at=self._now()))
                uow.commit()
        except Conflict as exc:
            if exc.code != "concurrent_update":
                raise
            with self._uow(read_only=True) as uow:  # the same key, written first by another
                seen = _replay(uow, key, op)
            if seen is None:
                raise
            return seen
        if stall == "after":
            raise PaymentTimedOut(f"the built-in processor's answer to the {op.value} of "
                                  f"{reference} was lost (retry with the same key)")
        return result


def _replay(uow: UnitOfWork, key: str, op: PaymentOp) -> ProcessorResult | None:
    seen = uow.processor_calls.get(key)
    if seen is None:
        return None
    if seen.result.operation is not op:
        raise Conflict("idempotency_key_reused",
                       f"Idempotency-Key {key!r} was used for a {seen.result.operation.value}, "
                       f"not a {op.value}", field="Idempotency-Key")
    return replace(seen.result, replayed=True)


def _state(uow: UnitOfWork, ref: str) -> tuple[Money, PaymentStatus]:
    """The held amount and the payment's status after every call on ``ref`` (from what
    the calls did, not their order: calls in one clock tick tie)."""
    calls = uow.processor_calls.for_ref(ref)
    held = next((c.result.amount for c in calls if c.result.operation is PaymentOp.AUTHORISE),
                None)
    if held is None:
        raise NotFound("payment_not_found", f"no payment {ref} at the built-in processor")
    moved = {op: sum(c.result.amount.amount_minor for c in calls if c.result.operation is op)
             for op in PaymentOp}
    if any(c.result.operation is PaymentOp.VOID for c in calls):
        return held, PaymentStatus.VOIDED
    if not moved[PaymentOp.CAPTURE]:
        return held, PaymentStatus.AUTHORISED
    if not moved[PaymentOp.REFUND]:
        return held, PaymentStatus.CAPTURED
    if moved[PaymentOp.REFUND] >= moved[PaymentOp.CAPTURE]:
        return held, PaymentStatus.REFUNDED
    return held, PaymentStatus.PARTIALLY_REFUNDED
