"""Proof of delivery: what the business required against what the courier gave."""

from __future__ import annotations

from dataclasses import dataclass

from lastmile.core.delivery.model import ProofRequirement
from lastmile.core.errors import InvalidInput


@dataclass(frozen=True, slots=True, kw_only=True)
class GivenProof:
    photo_ref: str | None = None
    signature_ref: str | None = None
    pin: str | None = None
    note: str | None = None


def missing_proof(required: ProofRequirement, given: GivenProof) -> tuple[str, ...]:
    """Names of the required proofs absent from ``given`` (blank strings count as absent).

    The PIN's value is checked by the order lifecycle (``pin_mismatch``); here
    only its presence.
    """
    present = {
        "photo": bool(given.photo_ref and given.photo_ref.strip()),
        "signature": bool(given.signature_ref and given.signature_ref.strip()),
        "pin": bool(given.pin and given.pin.strip()),
    }
    return tuple(name for name in required.names() if not present[name])


def check_proof(required: ProofRequirement, given: GivenProof) -> None:
    """Raise InvalidInput(code='proof_missing') naming every missing proof."""
    missing = missing_proof(required, given)
    if missing:
        raise InvalidInput(
            "proof_missing",
            f"this delivery requires {', '.join(required.names())} at drop-off; "
            f"missing: {', '.join(missing)}",
            field=f"proof.{missing[0]}",
            missing=list(missing),
        )


def check_undeliverable_action(required: ProofRequirement, action: str) -> None:
    """``leave_at_door`` cannot satisfy a PIN or a signature: nobody is there to give them."""
    if action == "leave_at_door" and (required.pin or required.signature):
        raise InvalidInput(
            "incompatible_undeliverable_action",
            "undeliverable_action leave_at_door cannot be combined with a required "
            f"{' and '.join(n for n in ('pin', 'signature') if getattr(required, n))}",
            field="undeliverable_action",
        )
