"""Payments (issue 10, item 4) through the built-in processor, on SQLite and, marked,
PostgreSQL: a hold at placement, capture, void, refund; declines and time-outs; a doubly
submitted payment charges once."""

from __future__ import annotations

import random
import threading
from dataclasses import replace

import pytest
import sqlalchemy as sa

from lastmile.adapters.bus.outbox import relay_once
from lastmile.adapters.payments.builtin import BuiltinProcessor
from lastmile.app import fulfilment, payments, queries
from lastmile.app.auth import Principal
from lastmile.app.context import new_event
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.app.tenancy import acting_as
from lastmile.bootstrap import install_payments
from lastmile.core.errors import (
    Conflict,
    DependencyUnavailable,
    Forbidden,
    InvalidInput,
    NotFound,
    PaymentDeclined,
    PaymentTimedOut,
)
from lastmile.core.geo import Point
from lastmile.core.money import Money
from lastmile.core.orders import Actor, ActorKind
from lastmile.core.payments import DeclinePolicy, PaymentOp, PaymentStatus
from tenant_helpers import TEST_TENANT, an_order_request, seed_test_tenant

DROP = Point(lat=37.445, lng=-122.15)
OPS = Principal(role="ops", subject_id="ops")


class Scripted(random.Random):
    """A ``random.Random`` whose ``random()`` answers the given values in turn."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0) if self.values else 0.99


def _request(p, consumer=0, merchant=0, card_token=None):  # type: ignore[no-untyped-def]
    m = queries.get_merchant(p.services, p.seed.merchant_ids[merchant])
    return OrderRequest(consumer_id=p.seed.consumer_ids[consumer], merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=DROP,
                        card_token=card_token)


def _builtin(p) -> BuiltinProcessor:  # type: ignore[no-untyped-def]
    proc = p.services.payments
    assert isinstance(proc, BuiltinProcessor)
    return proc


def _calls(p, ref: str):  # type: ignore[no-untyped-def]
    with p.services.uow(read_only=True) as uow:
        return uow.processor_calls.for_ref(ref)


def test_placing_an_order_holds_its_total_at_the_builtin_processor(platform):
    placed = place_order(platform.services, _request(platform), idempotency_key="k-1")
    pay = payments.payment_of(platform.services, placed.order.id)
    assert pay is not None and pay.status is PaymentStatus.AUTHORISED
    assert pay.amount == placed.order.prices.total and pay.processor == "builtin"
    [hold] = _calls(platform, pay.processor_ref)
    assert hold.result.operation is PaymentOp.AUTHORISE


def test_a_replayed_placement_takes_no_second_hold(platform):
    first = place_order(platform.services, _request(platform), idempotency_key="k-1")
    again = place_order(platform.services, _request(platform), idempotency_key="k-1")
    assert again.replayed and again.order.id == first.order.id
    pay = payments.payment_of(platform.services, first.order.id)
    assert pay is not None and len(_calls(platform, pay.processor_ref)) == 1


def test_a_declined_card_refuses_the_order_and_creates_nothing(platform):
    with pytest.raises(PaymentDeclined) as caught:
        place_order(platform.services, _request(platform, card_token="tok_chargeDeclined"),
                    idempotency_key="k-1")
    assert caught.value.code == "payment_declined" and caught.value.reason == "card_declined"
    assert queries.list_orders(platform.services, who=OPS, statuses=None) == []


def test_an_amount_above_the_limit_is_declined(platform):
    _builtin(platform).policy = DeclinePolicy(max_amount_minor=1)
    with pytest.raises(PaymentDeclined, match="amount_too_large"):
        place_order(platform.services, _request(platform), idempotency_key="k-1")
    assert queries.list_orders(platform.services, who=OPS, statuses=None) == []


def test_capture_on_delivery_then_partial_and_full_refunds(platform):
    svc = platform.services
    order = place_order(svc, _request(platform), idempotency_key="k-1").order
    total = order.prices.total.amount_minor
    moved = payments.capture_order(svc, order_id=order.id)
    assert moved is not None and moved.payment.status is PaymentStatus.CAPTURED
    assert moved.result.amount.amount_minor == total == moved.payment.captured_minor
    part = payments.refund_order(svc, order_id=order.id, amount_minor=100, idempotency_key="r1")
    assert part is not None and part.payment.status is PaymentStatus.PARTIALLY_REFUNDED
    again = payments.refund_order(svc, order_id=order.id, amount_minor=100, idempotency_key="r1")
    assert again is not None and again.result.replayed and again.payment.refunded_minor == 100
    with pytest.raises(InvalidInput, match="refund must be in"):
        payments.refund_order(svc, order_id=order.id, amount_minor=total, idempotency_key="r2")
    rest = payments.refund_order(svc, order_id=order.id, amount_minor=total - 100,
                                 idempotency_key="r3")
    assert rest is not None and rest.payment.status is PaymentStatus.REFUNDED


def test_void_before_capture_releases_the_hold_and_capture_is_then_refused(platform):
    svc = platform.services
    order = place_order(svc, _request(platform), idempotency_key="k-1").order
    voided = payments.void_order(svc, order_id=order.id)
    assert voided is not None and voided.payment.status is PaymentStatus.VOIDED
    assert payments.void_order(svc, order_id=order.id).result.replayed  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="only an authorised payment can be captured"):
        payments.capture_order(svc, order_id=order.id)


def test_a_retry_after_a_lost_answer_charges_once(platform):
    svc = platform.services
    order = place_order(svc, _request(platform), idempotency_key="k-1").order
    # The capture happens, its answer is lost (time-out "after"); the retry with the same
    # key gets the first answer back.
    _builtin(platform)._rng = Scripted(0.1, 0.2)  # timed out, after the money moved
    _builtin(platform).policy = DeclinePolicy(timeout_probability=0.5)
    moved = payments.capture_order(svc, order_id=order.id)
    assert moved is not None and moved.result.replayed
    captures = [c for c in _calls(platform, moved.payment.processor_ref)
                if c.result.operation is PaymentOp.CAPTURE]
    assert len(captures) == 1 and moved.payment.status is PaymentStatus.CAPTURED


def test_a_placement_retried_after_time_outs_holds_once(platform):
    _builtin(platform)._rng = Scripted(0.1, 0.2, 0.1, 0.9)  # after, before, then answered
    _builtin(platform).policy = DeclinePolicy(timeout_probability=0.5)
    order = place_order(platform.services, _request(platform), idempotency_key="k-1").order
    pay = payments.payment_of(platform.services, order.id)
    assert pay is not None and len(_calls(platform, pay.processor_ref)) == 1


def test_a_processor_that_never_answers_is_a_503_and_no_order(platform):
    _builtin(platform).policy = DeclinePolicy(timeout_probability=1.0)
    _builtin(platform)._rng = Scripted(0.0, 0.9, 0.0, 0.9, 0.0, 0.9)  # before, three times
    with pytest.raises(PaymentTimedOut) as caught:
        place_order(platform.services, _request(platform), idempotency_key="k-1")
    assert caught.value.code == "dependency_unavailable"
    assert queries.list_orders(platform.services, who=OPS, statuses=None) == []


def test_a_key_reused_for_another_operation_is_a_conflict(platform):
    proc = _builtin(platform)
    held = proc.authorise(amount=Money(amount_minor=500, currency="USD"), reference="x",
                          idempotency_key="same")
    with pytest.raises(Conflict, match="was used for a authorise"):
        proc.capture(processor_ref=held.processor_ref,
                     amount=Money(amount_minor=500, currency="USD"), idempotency_key="same")


def test_an_order_without_a_payment_moves_nothing(platform):
    svc = replace(platform.services, payments=None, sandbox_payments=None)
    order = place_order(svc, _request(platform), idempotency_key="k-1").order
    assert payments.payment_of(svc, order.id) is None
    assert payments.capture_order(svc, order_id=order.id) is None


def test_a_test_tenant_pays_the_builtin_processor_whatever_the_configuration(platform):
    class Live:
        name = "stripe"

        def authorise(self, **kw):  # type: ignore[no-untyped-def]
            raise AssertionError("a test tenant reached the live processor")

    world = seed_test_tenant(platform)
    svc = replace(platform.services, payments=Live())  # sandbox_payments: the builtin one
    with acting_as(TEST_TENANT):
        req = an_order_request(platform, consumer_id=world.consumer_ids[0],
                               merchant_id=world.merchant_ids[0])
        order = place_order(svc, req, idempotency_key="t-1").order
        pay = payments.payment_of(svc, order.id)
    assert pay is not None and pay.processor == "builtin"
    with acting_as(TEST_TENANT), pytest.raises(Forbidden, match="sandbox_payment_refused|test "
                                                               "tenant"):
        payments.processor(replace(svc, sandbox_payments=Live()))


def test_payments_of_one_tenant_are_invisible_to_another(platform):
    order = place_order(platform.services, _request(platform), idempotency_key="k-1").order
    seed_test_tenant(platform)
    with acting_as(TEST_TENANT):
        assert payments.payment_of(platform.services, order.id) is None


def _processor_calls(p, operation: str) -> int:  # type: ignore[no-untyped-def]
    """Every call of ``operation`` the built-in processor answered, in the whole table."""
    with p.container.engine.connect() as conn:
        return int(conn.execute(sa.text("select count(*) from processor_calls where "
                                        "operation = :op"), {"op": operation}).scalar_one())


def _together(n: int, work):  # type: ignore[no-untyped-def]
    """Run ``work(i)`` in ``n`` threads released at once; their results or errors."""
    barrier = threading.Barrier(n)
    out: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_a_doubly_submitted_placement_charges_once(platform):
    """Issue 10's "done when": the same payment submitted at once, twice (and more),
    gives one order, one payment record and one hold at the processor."""
    req = _request(platform)
    # No shared idempotency cache (API processes on several hosts without Redis): every
    # submission reaches the processor; the database and the processor's key decide.
    svc = replace(platform.services, idempotency_cache=None)
    results = _together(4, lambda i: place_order(svc, req, idempotency_key="double"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.order.id for r in results}) == 1  # type: ignore[union-attr]
    orders = queries.list_orders(platform.services, who=OPS, statuses=None)
    assert len(orders) == 1
    pay = payments.payment_of(platform.services, orders[0].id)
    assert pay is not None
    assert _processor_calls(platform, "authorise") == 1  # under any reference


def test_a_doubly_submitted_capture_takes_the_money_once(platform):
    order = place_order(platform.services, _request(platform), idempotency_key="k-1").order
    results = _together(4, lambda i: payments.capture_order(platform.services,
                                                            order_id=order.id))
    assert not [r for r in results if isinstance(r, Exception)], results
    pay = payments.payment_of(platform.services, order.id)
    assert pay is not None and pay.captured_minor == order.prices.total.amount_minor
    assert _processor_calls(platform, "capture") == 1
    assert sum(1 for r in results if not r.result.replayed) == 1  # type: ignore[union-attr]


def _relay(p) -> None:  # type: ignore[no-untyped-def]
    """Subscribe the payment steps (once) and relay the outbox to them."""
    install_payments(p.container)
    while relay_once(p.services, p.container.bus) > 0:
        pass


def test_a_cancellation_before_capture_voids_the_hold_through_the_bus(platform):
    svc = platform.services
    order = place_order(svc, _request(platform), idempotency_key="k-1").order
    fulfilment.cancel_order(svc, order.id, reason="changed my mind",
                            actor=Actor(kind=ActorKind.CONSUMER, id=order.consumer_id))
    _relay(platform)
    pay = payments.payment_of(svc, order.id)
    assert pay is not None and pay.status is PaymentStatus.VOIDED


def test_delivery_captures_and_a_repeated_event_moves_nothing(platform):
    svc = platform.services
    order = place_order(svc, _request(platform), idempotency_key="k-1").order
    delivered = (new_event(svc, type="order.delivered", region_id=order.region_id,
                                  subject_id=order.id, actor_kind="courier", actor_id="c"))
    moved = payments.on_order_event(svc, delivered)
    assert moved is not None and moved.payment.status is PaymentStatus.CAPTURED
    assert payments.on_order_event(svc, delivered) is None  # already captured
    cancelled = replace(delivered, type="order.cancelled")
    assert payments.on_order_event(svc, cancelled) is None  # captured money is not voided
    pay = payments.payment_of(svc, order.id)
    assert pay is not None and len(_calls(platform, pay.processor_ref)) == 2


class _FailFirstWrite:
    """The services' unit of work factory, whose first write unit finds the database down."""

    def __init__(self, inner):  # type: ignore[no-untyped-def]
        self.inner, self.failed = inner, False

    def __call__(self, *, read_only: bool = False):  # type: ignore[no-untyped-def]
        if not read_only and not self.failed:
            self.failed = True
            raise DependencyUnavailable("database", "the database is down (test)")
        return self.inner(read_only=read_only)


def test_a_placement_retried_after_its_order_failed_to_be_written_reuses_the_hold(platform):
    svc = replace(platform.services, uow=_FailFirstWrite(platform.services.uow))
    with pytest.raises(DependencyUnavailable):
        place_order(svc, _request(platform), idempotency_key="k-1")
    order = place_order(svc, _request(platform), idempotency_key="k-1").order
    pay = payments.payment_of(svc, order.id)
    assert pay is not None and pay.status is PaymentStatus.AUTHORISED
    assert len(_calls(platform, pay.processor_ref)) == 1


def test_an_unknown_consumer_is_refused_before_any_money_is_held(platform):
    req = replace(_request(platform), consumer_id="con_nope")
    with pytest.raises(NotFound, match="no consumer con_nope"):
        place_order(platform.services, req, idempotency_key="k-1")
    with platform.services.uow(read_only=True) as uow:
        assert uow.processor_calls.get("place:order:con_nope:k-1") is None


def test_a_capture_and_a_void_racing_under_different_keys_settle_the_hold_once(platform):
    order = place_order(platform.services, _request(platform), idempotency_key="k-1").order
    pay = payments.payment_of(platform.services, order.id)
    assert pay is not None
    proc = _builtin(platform)

    def settle(i: int):  # type: ignore[no-untyped-def]
        if i % 2:
            return proc.void(processor_ref=pay.processor_ref, idempotency_key=f"v{i}")
        return proc.capture(processor_ref=pay.processor_ref, amount=pay.amount,
                            idempotency_key=f"c{i}")

    results = _together(4, settle)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1, results
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    assert _processor_calls(platform, "capture") + _processor_calls(platform, "void") == 1
