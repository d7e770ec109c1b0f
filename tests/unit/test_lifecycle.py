import pytest

from fakes import an_order
from lastmile.core.errors import Conflict, Forbidden, InvalidInput
from lastmile.core.lifecycle import (
    ArriveAtDropoff,
    ArriveAtPickup,
    Assign,
    Cancel,
    Confirm,
    Deliver,
    MarkReady,
    PickUp,
    Reassign,
    Unassign,
    decide,
)
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof, OrderStatus

MERCHANT = Actor(kind=ActorKind.MERCHANT, id="mer_1")
CONSUMER = Actor(kind=ActorKind.CONSUMER, id="con_1")
COURIER = Actor(kind=ActorKind.COURIER, id="cou_1")
OPS = Actor(kind=ActorKind.OPS, id="ops")


def _run(order, *steps):
    for command, actor in steps:
        order, _ = decide(order, command, actor=actor, now=2000.0)
    return order


HAPPY = [
    (Confirm(prep_estimate_s=600), MERCHANT), (MarkReady(), MERCHANT),
    (Assign(courier_id="cou_1"), COURIER), (ArriveAtPickup(), COURIER), (PickUp(), COURIER),
    (ArriveAtDropoff(), COURIER), (Deliver(proof=DeliveryProof(note="door")), COURIER),
]


def test_happy_path_reaches_delivered_with_one_version_per_transition():
    order = _run(an_order(), *HAPPY)
    assert order.status is OrderStatus.DELIVERED and order.version == 1 + len(HAPPY)
    assert order.delivered_at == 2000.0 and order.courier_id == "cou_1"


def test_illegal_move_names_current_state_and_attempted_move():
    with pytest.raises(Conflict) as err:
        decide(an_order(), PickUp(), actor=OPS, now=1.0)
    assert err.value.extra == {"current_state": "placed", "attempted": "pick_up"}
    assert "placed" in err.value.message and "pick_up" in err.value.message


def test_transition_records_actor_time_and_states():
    _, t = decide(an_order(), Confirm(prep_estimate_s=600), actor=MERCHANT, now=1500.0)
    assert (t.type, t.from_status, t.to_status, t.actor, t.at) == (
        "order.confirmed", OrderStatus.PLACED, OrderStatus.CONFIRMED, MERCHANT, 1500.0)


def test_courier_can_be_assigned_before_food_is_ready_and_readiness_is_kept():
    order = _run(an_order(), (Confirm(prep_estimate_s=600), MERCHANT),
                 (Assign(courier_id="cou_1"), COURIER), (MarkReady(), MERCHANT))
    assert order.status is OrderStatus.ASSIGNED and order.ready_at == 2000.0


def test_ready_twice_is_refused():
    order = _run(an_order(), (Confirm(prep_estimate_s=600), MERCHANT), (MarkReady(), MERCHANT))
    with pytest.raises(Conflict):
        decide(order, MarkReady(), actor=MERCHANT, now=1.0)


def test_consumer_cancel_before_confirmation_is_free():
    order = _run(an_order(), (Cancel(reason="changed mind"), CONSUMER))
    assert order.cancellation.consumer_charge.amount_minor == 0


def test_consumer_cancel_after_confirmation_pays_food_service_and_tax():
    order = _run(an_order(), (Confirm(prep_estimate_s=600), MERCHANT),
                 (Cancel(reason="too slow"), CONSUMER))
    p = order.prices
    expected = p.subtotal.amount_minor + p.service_fee.amount_minor + p.tax.amount_minor
    assert order.cancellation.consumer_charge.amount_minor == expected


def test_merchant_cancel_never_charges_the_consumer():
    order = _run(an_order(), (Confirm(prep_estimate_s=600), MERCHANT),
                 (Cancel(reason="out of stock"), MERCHANT))
    assert order.cancellation.consumer_charge.amount_minor == 0


def test_consumer_cannot_cancel_after_pickup_but_ops_can():
    order = _run(an_order(), *HAPPY[:5])
    with pytest.raises(Conflict, match="left the merchant"):
        decide(order, Cancel(reason="late"), actor=CONSUMER, now=1.0)
    cancelled, _ = decide(order, Cancel(reason="lost"), actor=OPS, now=1.0)
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.cancellation.courier_paid


def test_unassign_returns_the_order_to_dispatch():
    order = _run(an_order(), (Confirm(prep_estimate_s=600), MERCHANT),
                 (Assign(courier_id="cou_1"), COURIER), (Unassign(reason="flat tyre"), COURIER))
    assert order.status is OrderStatus.UNASSIGNED and order.courier_id is None
    again = _run(order, (Assign(courier_id="cou_2"), Actor(kind=ActorKind.COURIER, id="cou_2")))
    assert again.courier_id == "cou_2"


def test_another_courier_cannot_move_the_order():
    order = _run(an_order(), *HAPPY[:3])
    with pytest.raises(Forbidden):
        decide(order, ArriveAtPickup(), actor=Actor(kind=ActorKind.COURIER, id="cou_9"), now=1.0)


def test_another_merchant_cannot_confirm():
    with pytest.raises(Forbidden):
        decide(an_order(), Confirm(prep_estimate_s=600),
               actor=Actor(kind=ActorKind.MERCHANT, id="mer_9"), now=1.0)


def test_consumer_cannot_confirm_their_own_order():
    with pytest.raises(Forbidden):
        decide(an_order(), Confirm(prep_estimate_s=600), actor=CONSUMER, now=1.0)


def test_delivery_with_wrong_pin_is_refused():
    order = _run(an_order(dropoff_pin="1234"), *HAPPY[:6])
    with pytest.raises(InvalidInput) as err:
        decide(order, Deliver(proof=DeliveryProof(pin="0000")), actor=COURIER, now=1.0)
    assert err.value.field == "proof.pin"


def test_proof_needs_something():
    with pytest.raises(InvalidInput, match="photo_ref, a pin or a note"):
        DeliveryProof()


def test_pickup_without_ready_signal_records_ready_at_handover():
    order = _run(an_order(), (Confirm(prep_estimate_s=600), MERCHANT),
                 (Assign(courier_id="cou_1"), COURIER), (ArriveAtPickup(), COURIER),
                 (PickUp(), COURIER))
    assert order.ready_at == order.picked_up_at == 2000.0


def test_reassign_moves_an_assigned_order_to_another_courier_and_counts_it():
    order, _ = decide(an_order(status=OrderStatus.READY), Assign(courier_id="cou_a"),
                      actor=SYSTEM, now=1.0)
    nxt, t = decide(order, Reassign(courier_id="cou_b", gain_s=300.0),
                    actor=Actor(kind=ActorKind.COURIER, id="cou_b"), now=2.0)
    assert (nxt.status, nxt.courier_id, nxt.moves) == (OrderStatus.ASSIGNED, "cou_b", 1)
    assert t.type == "order.reassigned"
    assert t.data == {"courier_id": "cou_b", "from_courier_id": "cou_a", "gain_s": 300.0,
                      "moves": 1}


def test_reassign_is_refused_once_the_courier_is_at_the_merchant():
    order, _ = decide(an_order(status=OrderStatus.READY), Assign(courier_id="cou_a"),
                      actor=SYSTEM, now=1.0)
    there, _ = decide(order, ArriveAtPickup(), actor=SYSTEM, now=2.0)
    with pytest.raises(Conflict):
        decide(there, Reassign(courier_id="cou_b"), actor=SYSTEM, now=3.0)
    with pytest.raises(Forbidden):  # a courier accepts only for itself
        decide(order, Reassign(courier_id="cou_b"),
               actor=Actor(kind=ActorKind.COURIER, id="cou_c"), now=3.0)
