"""The order lifecycle as a pure state machine.

placed -> confirmed -> ready -> assigned -> at_pickup -> picked_up -> at_dropoff
-> delivered, plus ``cancelled`` (by consumer, merchant or ops, with reason and
actor), ``unassigned`` (the courier dropped it before pickup; it goes back
to dispatch) and ``reassigned`` (still assigned, to another courier, who accepted
a move before the first one reached the merchant; ``moves`` counts them). A courier may be assigned before the food is ready (dispatch
aims the courier's arrival at the ready time), so readiness is also recorded
as ``ready_at`` while the order is with a courier.

``decide(order, command, actor=..., now=...)`` returns the next order and the
transition that explains it, or raises: ``Conflict`` for a move the current
state refuses (naming both), ``Forbidden`` when the actor may not make it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from typing import Any

from lastmile.core.errors import Conflict, Forbidden, InvalidInput
from lastmile.core.ids import CourierId
from lastmile.core.money import Money
from lastmile.core.orders import (
    AWAITING_COURIER,
    COURIER_BEFORE_PICKUP,
    Actor,
    ActorKind,
    Cancellation,
    DeliveryProof,
    Order,
    OrderStatus,
)

S = OrderStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirm:
    prep_estimate_s: int

    def __post_init__(self) -> None:
        if not 60 <= self.prep_estimate_s <= 4 * 3600:
            raise InvalidInput(
                "invalid_prep_estimate",
                f"prep_estimate_s must be in [60, 14400] (got {self.prep_estimate_s})",
                field="prep_estimate_s",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkReady:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Assign:
    courier_id: CourierId


@dataclass(frozen=True, slots=True, kw_only=True)
class ArriveAtPickup:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class PickUp:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ArriveAtDropoff:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    proof: DeliveryProof


@dataclass(frozen=True, slots=True, kw_only=True)
class Unassign:
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reassign:
    """Move an assigned order to ``courier_id`` (``gain_s``: the click-to-door it saves)."""

    courier_id: CourierId
    gain_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise InvalidInput("reason_required", "a cancellation needs a reason", field="reason")


Command = (
    Confirm | MarkReady | Assign | ArriveAtPickup | PickUp | ArriveAtDropoff | Deliver | Unassign
    | Reassign | Cancel
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """What happened: the event type, the states, who and when, with details."""

    type: str
    order_id: str
    from_status: OrderStatus
    to_status: OrderStatus
    actor: Actor
    at: float
    version: int
    data: dict[str, Any] = field(default_factory=dict)


# Command name -> (event type, statuses it may start from, actor kinds allowed).
_M, _C, _O, _Y, _U = (
    ActorKind.MERCHANT,
    ActorKind.COURIER,
    ActorKind.OPS,
    ActorKind.SYSTEM,
    ActorKind.CONSUMER,
)
_RULES: dict[type, tuple[str, frozenset[OrderStatus], frozenset[ActorKind]]] = {
    Confirm: ("order.confirmed", frozenset({S.PLACED}), frozenset({_M, _O})),
    MarkReady: (
        "order.ready",
        frozenset({S.CONFIRMED, S.ASSIGNED, S.AT_PICKUP, S.UNASSIGNED}),
        frozenset({_M, _O, _Y}),
    ),
    Assign: ("order.assigned", AWAITING_COURIER, frozenset({_C, _O, _Y})),
    ArriveAtPickup: ("order.courier_at_pickup", frozenset({S.ASSIGNED}), frozenset({_C, _O, _Y})),
    PickUp: ("order.picked_up", frozenset({S.AT_PICKUP}), frozenset({_C, _O, _Y})),
    ArriveAtDropoff: (
        "order.courier_at_dropoff",
        frozenset({S.PICKED_UP}),
        frozenset({_C, _O, _Y}),
    ),
    Deliver: ("order.delivered", frozenset({S.AT_DROPOFF}), frozenset({_C, _O, _Y})),
    Unassign: ("order.unassigned", COURIER_BEFORE_PICKUP, frozenset({_C, _O, _Y})),
    # Only before the courier reaches the merchant: one waiting there keeps the order.
    Reassign: ("order.reassigned", frozenset({S.ASSIGNED}), frozenset({_C, _O, _Y})),
    Cancel: (
        "order.cancelled",
        frozenset(set(S) - {S.DELIVERED, S.CANCELLED}),
        frozenset({_U, _M, _O, _Y}),
    ),
}

# A consumer or merchant cannot cancel food that has left the store; ops can.
_CANCEL_LIMIT = {
    ActorKind.CONSUMER: frozenset({S.PICKED_UP, S.AT_DROPOFF}),
    ActorKind.MERCHANT: frozenset({S.PICKED_UP, S.AT_DROPOFF}),
}


def command_name(command: Command) -> str:
    return command_name_of(type(command))


def allowed_commands(status: OrderStatus) -> list[str]:
    """Names of the commands the state machine accepts from ``status``."""
    return sorted(command_name_of(t) for t, (_, froms, _) in _RULES.items() if status in froms)


def command_name_of(kind: type) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in kind.__name__).lstrip("_")


def decide(order: Order, command: Command, *, actor: Actor, now: float) -> tuple[Order, Transition]:
    """Apply ``command`` by ``actor`` at ``now`` (epoch s): the next order and its transition."""
    event_type, froms, actors = _RULES[type(command)]
    name = command_name(command)
    if actor.kind not in actors:
        raise Forbidden(
            "actor_not_allowed",
            f"a {actor.kind.value} may not {name} an order (allowed: "
            f"{', '.join(sorted(a.value for a in actors))})",
        )
    _check_ownership(order, actor, name)
    if order.status not in froms or (
        isinstance(command, MarkReady) and order.ready_at is not None
    ):
        raise Conflict(
            "illegal_transition",
            f"cannot {name} order {order.id} in state {order.status.value}; "
            f"allowed from {order.status.value}: {', '.join(allowed_commands(order.status)) or 'none'}",
            current_state=order.status.value,
            attempted=name,
        )
    changes, data = _apply(order, command, actor, now)
    nxt = replace(order, version=order.version + 1, **changes)
    transition = Transition(
        type=event_type,
        order_id=order.id,
        from_status=order.status,
        to_status=nxt.status,
        actor=actor,
        at=now,
        version=nxt.version,
        data=data,
    )
    return nxt, transition


def _check_ownership(order: Order, actor: Actor, name: str) -> None:
    owner = {
        ActorKind.CONSUMER: order.consumer_id,
        ActorKind.MERCHANT: order.merchant_id,
        ActorKind.COURIER: order.courier_id,
    }.get(actor.kind)
    if actor.kind is ActorKind.COURIER and name in ("assign", "reassign"):
        return  # a courier accepting an offer is not yet the order's courier
    if actor.kind in (ActorKind.CONSUMER, ActorKind.MERCHANT, ActorKind.COURIER) and owner != actor.id:
        raise Forbidden(
            "not_your_order",
            f"{actor.kind.value} {actor.id} may not {name} order {order.id}",
        )


def _apply(
    order: Order, command: Command, actor: Actor, now: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    match command:
        case Confirm(prep_estimate_s=prep):
            return (
                {"status": S.CONFIRMED, "confirmed_at": now, "prep_estimate_s": prep},
                {"prep_estimate_s": prep, "ready_expected_at": now + prep},
            )
        case MarkReady():
            status = S.READY if order.status is S.CONFIRMED else order.status
            return {"status": status, "ready_at": now}, {}
        case Assign(courier_id=courier_id):
            if actor.kind is ActorKind.COURIER and actor.id != courier_id:
                raise Forbidden(
                    "not_your_offer", f"courier {actor.id} may not accept for {courier_id}"
                )
            return ({"status": S.ASSIGNED, "courier_id": courier_id, "assigned_at": now},
                    {"courier_id": courier_id})
        case Reassign(courier_id=courier_id, gain_s=gain_s):
            return _reassign(order, courier_id, gain_s, actor)
        case ArriveAtPickup():
            return {"status": S.AT_PICKUP, "at_pickup_at": now}, {"courier_id": order.courier_id}
        case PickUp():
            ready_at = order.ready_at if order.ready_at is not None else now
            return (
                {"status": S.PICKED_UP, "picked_up_at": now, "ready_at": ready_at},
                {"courier_id": order.courier_id},
            )
        case ArriveAtDropoff():
            return {"status": S.AT_DROPOFF}, {"courier_id": order.courier_id}
        case Deliver(proof=proof):
            _check_pin(order, proof)
            return (
                {"status": S.DELIVERED, "delivered_at": now, "proof": proof},
                {"courier_id": order.courier_id, "proof": _proof_data(proof)},
            )
        case Unassign(reason=reason):
            return (
                {"status": S.UNASSIGNED, "courier_id": None, "assigned_at": None,
                 "at_pickup_at": None},
                {"courier_id": order.courier_id, "reason": reason},
            )
        case Cancel(reason=reason):
            return _cancel(order, reason, actor)
    raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover


def _reassign(order: Order, courier_id: CourierId, gain_s: float,
              actor: Actor) -> tuple[dict[str, Any], dict[str, Any]]:
    if actor.kind is ActorKind.COURIER and actor.id != courier_id:
        raise Forbidden("not_your_offer", f"courier {actor.id} may not accept for {courier_id}")
    if courier_id == order.courier_id:
        raise Conflict("same_courier",
                       f"order {order.id} is already with courier {courier_id}",
                       current_state=order.status.value, attempted="reassign")
    moves = order.moves + 1
    return ({"courier_id": courier_id, "moves": moves},
            {"courier_id": courier_id, "from_courier_id": order.courier_id,
             "gain_s": gain_s, "moves": moves})


def _check_pin(order: Order, proof: DeliveryProof) -> None:
    # Constant-time: how long a comparison takes says nothing about how close a guess was.
    # (Attempts are counted and limited by app.pins.)
    if order.dropoff_pin is not None and not hmac.compare_digest(
        (proof.pin or "").encode(), order.dropoff_pin.encode()
    ):
        raise InvalidInput(
            "pin_mismatch",
            f"order {order.id} requires the consumer's drop-off PIN; the pin given does not match",
            field="proof.pin",
        )


def _proof_data(proof: DeliveryProof) -> dict[str, Any]:
    return {"photo_ref": proof.photo_ref, "pin_given": proof.pin is not None, "note": proof.note}


def cancellation_charge(order: Order, actor: Actor) -> Money:
    """What the consumer still pays when ``actor`` cancels ``order`` now.

    A consumer cancelling before the merchant confirms pays nothing; after
    confirmation the food is being made, so the subtotal, service fee and tax
    are kept (delivery fee, tip and small-order fee are refunded). A merchant, ops
    or system cancellation never charges the consumer.
    """
    if actor.kind is not ActorKind.CONSUMER or order.status is S.PLACED:
        return Money.zero(order.currency)
    p = order.prices
    return p.subtotal + p.service_fee + p.tax


def _cancel(order: Order, reason: str, actor: Actor) -> tuple[dict[str, Any], dict[str, Any]]:
    if order.status in _CANCEL_LIMIT.get(actor.kind, frozenset()):
        raise Conflict(
            "illegal_transition",
            f"a {actor.kind.value} cannot cancel order {order.id} in state "
            f"{order.status.value}: the food has left the merchant; contact support",
            current_state=order.status.value,
            attempted="cancel",
        )
    charge = cancellation_charge(order, actor)
    # The courier is paid for the trip once they reached the merchant.
    courier_paid = order.status in (S.AT_PICKUP, S.PICKED_UP, S.AT_DROPOFF)
    cancellation = Cancellation(
        actor=actor,
        reason=reason,
        from_status=order.status,
        consumer_charge=charge,
        courier_paid=courier_paid,
    )
    return (
        {"status": S.CANCELLED, "cancellation": cancellation},
        {
            "reason": reason,
            "consumer_charge_minor": charge.amount_minor,
            "courier_paid": courier_paid,
            "courier_id": order.courier_id,
        },
    )
