"""Stripe through its official package: PaymentIntents with ``capture_method=manual``
(the authorisation hold), capture, cancel (void) and refunds; every POST carries the
call's idempotency key, so Stripe answers a repeat with the first response
(``Idempotent-Replayed: true``) and moves nothing twice.

The client never retries on its own (``max_network_retries=0``): ``app.payments``
retries a time-out with the same key. ``guard`` is ``app.sandbox.require_live_money``:
called before any request leaves, it refuses a test tenant's money.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import stripe

from lastmile.app.tenancy import current_tenant
from lastmile.core.errors import (
    Conflict,
    InvalidInput,
    PaymentDeclined,
    PaymentTimedOut,
    Unauthorized,
)
from lastmile.core.money import Money
from lastmile.core.payments import (
    PaymentOp,
    PaymentStatus,
    ProcessorNotice,
    ProcessorResult,
    check_key,
)

NAME = "stripe"
DEFAULT_TIMEOUT_S = 20.0
DEFAULT_CARD = "pm_card_visa"  # the consumer's saved card in a real integration


class StripeProcessor:
    name = NAME

    def __init__(self, *, api_key: str, guard: Callable[[str], None],
                 api_base: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S):
        self._guard = guard
        self._client = stripe.StripeClient(
            api_key, base_addresses={"api": api_base} if api_base else {},
            max_network_retries=0, http_client=stripe.RequestsClient(timeout=timeout_s))

    def authorise(self, *, amount: Money, reference: str, idempotency_key: str,
                  card_token: str | None = None) -> ProcessorResult:
        self._guard(f"authorisation of {reference}")
        params: dict[str, Any] = {
            "amount": amount.amount_minor, "currency": amount.currency.lower(),
            "capture_method": "manual", "confirm": True,
            "payment_method": card_token or DEFAULT_CARD,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": {"reference": reference, "tenant": current_tenant()},
        }
        pi = self._post(reference, idempotency_key, lambda opts: self._client.v1.payment_intents
                        .create(params=params, options=opts))  # type: ignore[arg-type]
        return _result(pi, PaymentOp.AUTHORISE, amount)

    def capture(self, *, processor_ref: str, amount: Money,
                idempotency_key: str) -> ProcessorResult:
        self._guard(f"capture of {processor_ref}")
        pi = self._post(processor_ref, idempotency_key, lambda opts: self._client.v1
                        .payment_intents.capture(processor_ref, params={
                            "amount_to_capture": amount.amount_minor}, options=opts))
        return _result(pi, PaymentOp.CAPTURE, amount)

    def void(self, *, processor_ref: str, idempotency_key: str) -> ProcessorResult:
        self._guard(f"void of {processor_ref}")
        pi = self._post(processor_ref, idempotency_key, lambda opts: self._client.v1
                        .payment_intents.cancel(processor_ref, options=opts))
        return _result(pi, PaymentOp.VOID, Money(amount_minor=pi.amount,
                                                 currency=pi.currency.upper()))

    def refund(self, *, processor_ref: str, amount: Money,
               idempotency_key: str) -> ProcessorResult:
        self._guard(f"refund of {processor_ref}")
        refund = self._post(processor_ref, idempotency_key, lambda opts: self._client.v1
                            .refunds.create(params={"payment_intent": processor_ref,
                                                    "amount": amount.amount_minor},
                                            options=opts))
        return ProcessorResult(processor=NAME, processor_ref=processor_ref,
                               operation=PaymentOp.REFUND,
                               status=PaymentStatus.PARTIALLY_REFUNDED, amount=amount,
                               replayed=_replayed(refund))

    def _post(self, what: str, key: str, call: Callable[[Any], Any]) -> Any:
        check_key(key)
        try:
            return call({"idempotency_key": key})
        except stripe.CardError as exc:
            reason = (exc.error.decline_code if exc.error and exc.error.decline_code
                      else exc.code) or "card_declined"
            raise PaymentDeclined(f"Stripe declined {what}: {exc.user_message or reason}",
                                  reason=reason) from exc
        except stripe.APIConnectionError as exc:
            raise PaymentTimedOut(f"Stripe did not answer about {what} in time "
                                  "(retry with the same key)") from exc
        except stripe.IdempotencyError as exc:
            raise Conflict("idempotency_key_reused",
                           f"Idempotency-Key {key!r} was used for another request at Stripe",
                           field="Idempotency-Key") from exc
        except stripe.InvalidRequestError as exc:
            raise Conflict("payment_refused", f"Stripe refused {what}: {exc.user_message or exc}"
                           ) from exc
        except stripe.APIError as exc:
            raise PaymentTimedOut(f"Stripe failed on {what} (retry with the same key)") from exc
        except stripe.StripeError as exc:
            raise InvalidInput("payment_failed", f"Stripe refused {what}: {exc}") from exc


_STATUS = {"requires_capture": PaymentStatus.AUTHORISED, "succeeded": PaymentStatus.CAPTURED,
           "canceled": PaymentStatus.VOIDED}


def _replayed(obj: Any) -> bool:
    response = getattr(obj, "last_response", None)
    headers = getattr(response, "headers", None) or {}
    return str(headers.get("Idempotent-Replayed", "")).lower() == "true"


def _result(pi: Any, op: PaymentOp, amount: Money) -> ProcessorResult:
    status = _STATUS.get(pi.status)
    if status is None:
        raise PaymentDeclined(f"Stripe left payment {pi.id} {pi.status} (not authorised)",
                              reason=str(pi.status), processor_ref=pi.id)
    return ProcessorResult(processor=NAME, processor_ref=pi.id, operation=op, status=status,
                           amount=amount, replayed=_replayed(pi))


class StripeWebhooks:
    """Stripe's signed webhooks: ``stripe.Webhook.construct_event`` checks the
    ``Stripe-Signature`` header (HMAC-SHA256 with the endpoint's secret, within
    ``tolerance_s`` of the signed timestamp)."""

    def __init__(self, *, secret: str, tolerance_s: int = 300):
        self._secret = secret
        self._tolerance_s = tolerance_s

    def parse(self, payload: bytes, signature: str | None) -> ProcessorNotice:
        try:
            event = stripe.Webhook.construct_event(payload, signature, self._secret,
                                                   tolerance=self._tolerance_s)
        except stripe.SignatureVerificationError as exc:
            raise Unauthorized("invalid_webhook_signature",
                               f"the Stripe-Signature header does not sign this body: {exc}"
                               ) from exc
        except ValueError as exc:
            raise InvalidInput("invalid_webhook_payload",
                               f"the webhook body is not a Stripe event: {exc}") from exc
        obj: dict[str, Any] = event.data.object.to_dict()
        ref = obj.get("id") if obj.get("object") == "payment_intent" else obj.get(
            "payment_intent")
        metadata = obj.get("metadata") or {}
        status = _NOTICE_STATUS.get(event.type)
        if status is PaymentStatus.REFUNDED and not obj.get("refunded", True):
            status = PaymentStatus.PARTIALLY_REFUNDED  # charge.refunded fires on each refund
        return ProcessorNotice(event_id=event.id, type=event.type, processor_ref=ref,
                               status=status,
                               tenant=metadata.get("tenant"))


_NOTICE_STATUS = {
    "payment_intent.amount_capturable_updated": PaymentStatus.AUTHORISED,
    "payment_intent.succeeded": PaymentStatus.CAPTURED,
    "payment_intent.canceled": PaymentStatus.VOIDED,
    "charge.refunded": PaymentStatus.REFUNDED,
}
