"""Drop-off PIN guessing is limited per order, across processes, restarts and parallel tries."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from drive_helpers import a_request, courier_actor, to_dropoff

from lastmile.app import drive, notifications, pins, queries
from lastmile.app.auth import Principal
from lastmile.bootstrap import build
from lastmile.core.delivery.model import ProofRequirement
from lastmile.core.delivery.proof import GivenProof
from lastmile.core.errors import Conflict, DomainError, Forbidden, InvalidInput
from lastmile.core.orders import Actor, ActorKind

OPS = Actor(kind=ActorKind.OPS, id="ops-1")
OPS_KEY = Principal(role="ops", subject_id="ops-1")


def pin_order(platform) -> tuple[str, str, Actor]:  # type: ignore[no-untyped-def]
    view = drive.create_delivery(platform.services, a_request(
        platform, proof=ProofRequirement(pin=True)))
    courier = to_dropoff(platform, view.order.id)
    pin = view.order.dropoff_pin
    assert pin is not None
    return view.order.id, pin, courier


def wrong(pin: str, n: int = 1) -> str:
    return f"{(int(pin) + n) % 10_000:04d}"


def guess(platform, order_id: str, pin: str, courier: Actor) -> DomainError | None:  # type: ignore[no-untyped-def]
    try:
        drive.courier_deliver(platform.services, order_id, given=GivenProof(pin=pin),
                              actor=courier)
    except DomainError as exc:
        return exc
    return None


def test_five_wrong_pins_lock_pin_delivery_even_for_the_right_pin(platform):
    order_id, pin, courier = pin_order(platform)
    errors = [guess(platform, order_id, wrong(pin, n), courier) for n in range(1, 6)]
    assert [e.code for e in errors if e] == ["pin_mismatch"] * 4 + ["pin_locked"]
    assert [e.extra.get("attempts_left") for e in errors[:4] if e] == [4, 3, 2, 1]
    assert isinstance(errors[-1], Conflict)
    locked = guess(platform, order_id, pin, courier)
    assert locked is not None and locked.code == "pin_locked"
    svc = platform.services
    assert queries.get_order(svc, order_id, who=OPS_KEY).status.value == "at_dropoff"
    types = [e.type for e in queries.order_history(svc, order_id, who=OPS_KEY)]
    assert types.count("order.pin_rejected") == 5 and types.count("order.pin_locked") == 1


def test_ops_are_notified_of_a_lock_and_can_unlock_it(platform):
    order_id, pin, courier = pin_order(platform)
    for n in range(1, 6):
        guess(platform, order_id, wrong(pin, n), courier)
    svc = platform.services
    with svc.uow(read_only=True) as uow:
        events = uow.events.for_subject(order_id)
    for event in events:  # what the notifications subscriber does for each relayed event
        notifications.on_event(svc, event, notifications.DEFAULT_POLICY)
    with svc.uow(read_only=True) as uow:
        notices = uow.notifications.list(recipient_id="ops", limit=50)
    assert [(n.kind.value, n.recipient_kind) for n in notices] == [("pin_locked", "ops")]
    assert order_id in notices[0].body and pin not in notices[0].body
    assert all(pin not in str(e.data) for e in events)  # no event carries the PIN
    assert pins.unlock_pin(svc, order_id, actor=OPS) == 5
    assert guess(platform, order_id, pin, courier) is None  # delivered
    assert queries.get_order(svc, order_id, who=OPS_KEY).status.value == "delivered"


def test_a_right_pin_after_wrong_ones_delivers_and_the_count_survives_a_restart(platform,
                                                                                tmp_path):
    order_id, pin, courier = pin_order(platform)
    for n in range(1, 4):
        guess(platform, order_id, wrong(pin, n), courier)
    # Another process on the same database sees the same count.
    other = build(platform.container.settings, clock=platform.clock, run_migrations=False)
    try:
        with other.services.uow(read_only=True) as uow:
            assert uow.pin_attempts.failures(order_id) == 3
        err = guess(replace(platform, container=other), order_id, wrong(pin, 7), courier)
        assert err is not None and err.extra.get("attempts_left") == 1
    finally:
        other.close()
    assert guess(platform, order_id, pin, courier) is None


def test_refusals_that_are_not_guesses_are_not_counted(platform):
    order_id, pin, courier = pin_order(platform)
    stranger = courier_actor(platform, 1)
    for _ in range(6):
        err = guess(platform, order_id, wrong(pin), stranger)
        assert isinstance(err, Forbidden)
        assert isinstance(guess(platform, order_id, None, courier), InvalidInput)  # type: ignore[arg-type]
    with platform.services.uow(read_only=True) as uow:
        assert uow.pin_attempts.failures(order_id) == 0


@pytest.mark.postgres
def test_parallel_guesses_never_get_past_the_limit(platform):
    if platform.container.engine.dialect.name != "postgresql":
        pytest.skip("writers race only on PostgreSQL")
    order_id, pin, courier = pin_order(platform)
    codes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def attempt(n: int) -> None:
        start.wait()
        err = guess(platform, order_id, wrong(pin, n), courier)
        with lock:
            codes.append(err.code if err else "delivered")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(1, 13)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == sorted(["pin_mismatch"] * 4 + ["pin_locked"] * 8)
    with platform.services.uow(read_only=True) as uow:
        assert uow.pin_attempts.failures(order_id) == 5
