"""Payments: the values a payment processor answers with, and the built-in processor's
rules (which charges it declines, when it stalls).

A payment is an authorisation hold on the consumer's card for an order's total, then
either captured (on delivery), voided (cancelled before capture) or, once captured,
refunded in part or in full. Every call that moves money carries an idempotency key:
the processor answers a repeated key with the first answer and moves nothing twice.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from enum import StrEnum

from lastmile.core.errors import InvalidInput
from lastmile.core.money import Money

MAX_KEY_LENGTH = 200  # Stripe's own limit on an Idempotency-Key is 255


class PaymentStatus(StrEnum):
    AUTHORISED = "authorised"  # held on the card, not yet taken
    CAPTURED = "captured"
    VOIDED = "voided"  # the hold released before capture
    REFUNDED = "refunded"  # captured, then given back in full
    PARTIALLY_REFUNDED = "partially_refunded"


class PaymentOp(StrEnum):
    AUTHORISE = "authorise"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessorResult:
    """What the processor answered: its reference for the payment (``bip_...`` for the
    built-in processor, a PaymentIntent id ``pi_...`` for Stripe), the payment's status
    after the call and the amount this call moved (held, captured, released, refunded)."""

    processor: str  # "builtin" or "stripe"
    processor_ref: str
    operation: PaymentOp
    status: PaymentStatus
    amount: Money
    replayed: bool = False  # the processor answered an earlier call with the same key


@dataclass(frozen=True, slots=True, kw_only=True)
class Payment:
    """The platform's record of an order's payment (one per order)."""

    id: str
    order_id: str
    status: PaymentStatus
    amount: Money  # authorised
    processor: str
    processor_ref: str
    idempotency_key: str  # the authorisation's
    created_at: float
    updated_at: float
    captured_minor: int = 0
    refunded_minor: int = 0


def check_key(key: str) -> str:
    """An idempotency key is 1..200 characters (the rule every money-moving call keeps)."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidInput("invalid_idempotency_key",
                           f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} characters "
                           f"(got {len(key)})", field="Idempotency-Key")
    return key


def derived_key(order_id: str, operation: PaymentOp, *, part: str = "") -> str:
    """The key of a call the platform makes on its own (capture on delivery, void on
    cancellation): the order and the operation, so a repeat of the same step is a replay."""
    return f"{order_id}:{operation.value}" + (f":{part}" if part else "")


def reference_for(prefix: str, tenant: str, key: str) -> str:
    """A stable reference from (tenant, key): the same call gets the same reference on
    every retry and in every process, and the id source's sequence is left alone."""
    digest = hashlib.sha256(f"{tenant}\x00{key}".encode()).hexdigest()[:24]
    return f"{prefix}_{digest}"


# Test card tokens the built-in processor understands (Stripe's test cards' names).
DECLINED_CARDS = {
    "tok_chargeDeclined": "card_declined",
    "tok_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "tok_chargeDeclinedExpiredCard": "expired_card",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclinePolicy:
    """When the built-in processor refuses or stalls.

    - ``max_amount_minor``: an authorisation above it is declined ``amount_too_large``
      (None: no limit);
    - ``declined_cards``: card token -> decline code (Stripe's test tokens by default);
    - ``decline_probability``: a share of authorisations declined ``card_declined`` at
      random (the simulator's card failures);
    - ``timeout_probability``: a share of calls that time out. Half of them time out
      *after* the processor acted (the answer was lost), half before: a retry with the
      same key must then find the first outcome, never move money again.
    The defaults approve everything, so placing an order behaves as before payments.
    """

    max_amount_minor: int | None = None
    declined_cards: tuple[tuple[str, str], ...] = tuple(DECLINED_CARDS.items())
    decline_probability: float = 0.0
    timeout_probability: float = 0.0

    def __post_init__(self) -> None:
        for name in ("decline_probability", "timeout_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidInput("invalid_probability",
                                   f"{name} must be in [0, 1] (got {value})", field=name)

    def decline_reason(self, *, amount: Money, card_token: str | None,
                       rng: random.Random) -> str | None:
        """The decline code for an authorisation, or None to approve. A card token's rule
        wins over the amount limit, which wins over chance."""
        cards = dict(self.declined_cards)
        if card_token is not None and card_token in cards:
            return cards[card_token]
        if self.max_amount_minor is not None and amount.amount_minor > self.max_amount_minor:
            return "amount_too_large"
        if self.decline_probability and rng.random() < self.decline_probability:
            return "card_declined"
        return None

    def timeout(self, rng: random.Random) -> str | None:
        """``"before"`` (nothing happened), ``"after"`` (it happened, the answer was lost)
        or None (answered)."""
        if not self.timeout_probability or rng.random() >= self.timeout_probability:
            return None
        return "after" if rng.random() < 0.5 else "before"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessorCall:
    """One call the built-in processor answered, kept under its idempotency key: a
    repeat of the key gets ``result`` back (``replayed``) and moves nothing."""

    key: str
    reference: str  # what the money is for: the placement or the order
    result: ProcessorResult
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessorNotice:
    """What a processor's signed webhook says about a payment: its event, the payment's
    reference, the status it reached (None: a type we do not act on) and the tenant the
    payment was made in (from the metadata the platform sent with it)."""

    event_id: str
    type: str
    processor_ref: str | None
    status: PaymentStatus | None
    tenant: str | None
