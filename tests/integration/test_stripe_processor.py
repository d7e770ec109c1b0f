"""The Stripe adapter through the official ``stripe`` package, against a local server
that answers as Stripe's API reference documents (tests/stripe_fake.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import replace

import pytest

from lastmile.adapters.payments.stripe_processor import StripeProcessor, StripeWebhooks
from lastmile.app import payments, queries
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.app.sandbox import require_live_money
from lastmile.app.tenancy import acting_as
from lastmile.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    PaymentDeclined,
    PaymentTimedOut,
    Unauthorized,
)
from lastmile.core.geo import Point
from lastmile.core.money import Money
from lastmile.core.payments import PaymentOp, PaymentStatus, ProcessorNotice
from stripe_fake import API_KEY, fake_stripe
from tenant_helpers import TEST_TENANT, an_order_request, seed_test_tenant

USD = "USD"
SECRET = "whsec_lastmile_test"


def _stripe(base: str, *, timeout_s: float = 5.0, guard=None) -> StripeProcessor:  # type: ignore[no-untyped-def]
    return StripeProcessor(api_key=API_KEY, api_base=base, timeout_s=timeout_s,
                           guard=guard or (lambda what: None))


def _usd(minor: int) -> Money:
    return Money(amount_minor=minor, currency=USD)


def test_an_authorisation_is_a_manual_capture_payment_intent_sent_with_its_key():
    with fake_stripe() as (fake, base):
        held = _stripe(base).authorise(amount=_usd(1250), reference="place:c1:k1",
                                       idempotency_key="place:c1:k1")
    assert held.status is PaymentStatus.AUTHORISED and held.processor_ref.startswith("pi_")
    assert not held.replayed
    [(method, path, params, headers)] = fake.requests
    assert (method, path) == ("POST", "/v1/payment_intents")
    assert params["capture_method"] == "manual" and params["amount"] == "1250"
    assert params["currency"] == "usd" and params["metadata"]["reference"] == "place:c1:k1"
    assert headers["Idempotency-Key"] == "place:c1:k1"


def test_the_same_key_replays_the_first_answer_and_charges_once():
    with fake_stripe() as (fake, base):
        proc = _stripe(base)
        first = proc.authorise(amount=_usd(900), reference="r", idempotency_key="k-1")
        again = proc.authorise(amount=_usd(900), reference="r", idempotency_key="k-1")
        assert again.replayed and again.processor_ref == first.processor_ref
        assert fake.charges() == 1 and len(fake.intents) == 1


def test_a_key_reused_with_other_parameters_is_a_conflict():
    with fake_stripe() as (_, base):
        proc = _stripe(base)
        proc.authorise(amount=_usd(900), reference="r", idempotency_key="k-1")
        with pytest.raises(Conflict, match="idempotency_key_reused|another request"):
            proc.authorise(amount=_usd(901), reference="r", idempotency_key="k-1")


def test_a_declined_card_is_a_payment_declined_naming_the_reason():
    with fake_stripe() as (fake, base):
        with pytest.raises(PaymentDeclined) as caught:
            _stripe(base).authorise(amount=_usd(900), reference="r", idempotency_key="k-d",
                                    card_token="pm_card_chargeDeclined")
    assert caught.value.code == "payment_declined" and caught.value.reason == "generic_decline"
    assert fake.charges() == 0


def test_a_time_out_then_a_retry_with_the_same_key_charges_once():
    with fake_stripe() as (fake, base):
        proc = _stripe(base, timeout_s=0.5)
        fake.stall_once.add("k-slow")  # Stripe creates the intent; the answer is late
        with pytest.raises(PaymentTimedOut):
            proc.authorise(amount=_usd(700), reference="r", idempotency_key="k-slow")
        assert fake.charges() == 1
        again = proc.authorise(amount=_usd(700), reference="r", idempotency_key="k-slow")
        assert again.replayed and fake.charges() == 1 and len(fake.intents) == 1
        # app.payments does the same on its own: time-out, retry, one charge.
        fake.stall_once.add("k-slow-2")
        result = payments.with_retries(lambda: proc.authorise(
            amount=_usd(800), reference="r2", idempotency_key="k-slow-2"))
        assert result.replayed and len(fake.intents) == 2


def test_capture_cancel_and_refunds_go_to_their_endpoints():
    with fake_stripe() as (fake, base):
        proc = _stripe(base)
        a = proc.authorise(amount=_usd(1000), reference="a", idempotency_key="a:auth")
        captured = proc.capture(processor_ref=a.processor_ref, amount=_usd(1000),
                                idempotency_key="a:capture")
        assert captured.status is PaymentStatus.CAPTURED
        refund = proc.refund(processor_ref=a.processor_ref, amount=_usd(300),
                             idempotency_key="a:refund:1")
        assert refund.operation is PaymentOp.REFUND and not refund.replayed
        assert proc.refund(processor_ref=a.processor_ref, amount=_usd(300),
                           idempotency_key="a:refund:1").replayed
        assert len(fake.refunds) == 1
        with pytest.raises(Conflict, match="greater than unrefunded"):
            proc.refund(processor_ref=a.processor_ref, amount=_usd(800),
                        idempotency_key="a:refund:2")
        b = proc.authorise(amount=_usd(500), reference="b", idempotency_key="b:auth")
        voided = proc.void(processor_ref=b.processor_ref, idempotency_key="b:void")
        assert voided.status is PaymentStatus.VOIDED and voided.amount == _usd(500)
        with pytest.raises(Conflict, match="could not be captured"):
            proc.capture(processor_ref=b.processor_ref, amount=_usd(500),
                         idempotency_key="b:capture")
    paths = [p for _, p, _, _ in fake.requests]
    assert f"/v1/payment_intents/{a.processor_ref}/capture" in paths
    assert f"/v1/payment_intents/{b.processor_ref}/cancel" in paths
    assert all("Idempotency-Key" in h for _, _, _, h in fake.requests)


def test_the_guard_stops_a_call_before_it_leaves():
    def refuse(what: str) -> None:
        raise Forbidden("sandbox_payment_refused", what)

    with fake_stripe() as (fake, base):
        with pytest.raises(Forbidden):
            _stripe(base, guard=refuse).authorise(amount=_usd(1), reference="r",
                                                  idempotency_key="k")
    assert fake.requests == []


def _order_request(p):  # type: ignore[no-untyped-def]
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    return OrderRequest(consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=1),),
                        dropoff=Point(lat=37.445, lng=-122.15))


def test_orders_of_a_live_tenant_pay_through_stripe_and_a_test_tenants_never_do(sqlite_platform):
    p = sqlite_platform
    with fake_stripe() as (fake, base):
        svc = p.services
        svc = replace(svc, payments=_stripe(base, guard=lambda what: require_live_money(
            svc, what=what)))
        order = place_order(svc, _order_request(p), idempotency_key="k-1").order
        pay = payments.payment_of(svc, order.id)
        assert pay is not None and pay.processor == "stripe"
        assert fake.intents[pay.processor_ref]["amount"] == order.prices.total.amount_minor
        moved = payments.capture_order(svc, order_id=order.id)
        assert moved is not None and moved.payment.status is PaymentStatus.CAPTURED
        sent = len(fake.requests)
        world = seed_test_tenant(p)
        with acting_as(TEST_TENANT):
            req = an_order_request(p, consumer_id=world.consumer_ids[0],
                                   merchant_id=world.merchant_ids[0])
            test_order = place_order(svc, req, idempotency_key="t-1").order
            test_pay = payments.payment_of(svc, test_order.id)
        assert test_pay is not None and test_pay.processor == "builtin"
        assert len(fake.requests) == sent  # nothing of the test tenant reached Stripe


def _signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _event(kind: str, obj: dict) -> bytes:  # type: ignore[type-arg]
    return json.dumps({"id": "evt_1", "object": "event", "type": kind, "api_version": None,
                       "created": 1, "livemode": False, "data": {"object": obj}}).encode()


def test_a_signed_webhook_is_read_and_a_forged_one_refused():
    hooks = StripeWebhooks(secret=SECRET)
    body = _event("payment_intent.canceled", {"id": "pi_1", "object": "payment_intent",
                                              "metadata": {"tenant": "lastmile:default"}})
    notice = hooks.parse(body, _signed(body))
    assert notice == ProcessorNotice(event_id="evt_1", type="payment_intent.canceled",
                                     processor_ref="pi_1", status=PaymentStatus.VOIDED,
                                     tenant="lastmile:default")
    with pytest.raises(Unauthorized, match="does not sign"):
        hooks.parse(body, _signed(body, secret="whsec_other"))
    with pytest.raises(Unauthorized):
        hooks.parse(body, _signed(body, at=int(time.time()) - 3600))  # replayed too late
    with pytest.raises(Unauthorized):
        hooks.parse(body, None)
    with pytest.raises(InvalidInput):
        hooks.parse(b"not json", _signed(b"not json"))


def test_a_webhook_brings_a_payment_cancelled_in_stripes_dashboard_up_to_date(sqlite_platform):
    from fastapi.testclient import TestClient

    from lastmile.api.app import create_app

    p = sqlite_platform
    order = place_order(p.services, _order_request(p), idempotency_key="k-1").order
    pay = payments.payment_of(p.services, order.id)
    assert pay is not None
    p.container.services = replace(p.services, payment_notices=StripeWebhooks(secret=SECRET))
    body = _event("payment_intent.canceled", {"id": pay.processor_ref,
                                              "object": "payment_intent",
                                              "metadata": {"tenant": "lastmile:default"}})
    with TestClient(create_app(p.container, start_workers=False)) as client:
        url = "/v1/payments/stripe/webhook"
        forged = client.post(url, content=body, headers={"Stripe-Signature": "t=1,v1=00"})
        assert forged.status_code == 401
        assert forged.json()["code"] == "invalid_webhook_signature"
        ok = client.post(url, content=body, headers={"Stripe-Signature": _signed(body)})
        assert ok.status_code == 200 and ok.json()["updated"] is True
        again = client.post(url, content=body, headers={"Stripe-Signature": _signed(body)})
        assert again.json()["updated"] is False
    after = payments.payment_of(p.services, order.id)
    assert after is not None and after.status is PaymentStatus.VOIDED


def test_bootstrap_wires_stripe_for_live_tenants_and_the_builtin_one_for_test_tenants(tmp_path):
    from lastmile.bootstrap import build
    from lastmile.settings import Settings

    settings = Settings(data_dir=tmp_path, payments="stripe", stripe_api_key=API_KEY,
                        stripe_webhook_secret=SECRET, stripe_api_base="http://127.0.0.1:9")
    container = build(settings)
    try:
        svc = container.services
        assert svc.payments is not None and svc.payments.name == "stripe"
        assert svc.sandbox_payments is not None and svc.sandbox_payments.name == "builtin"
        assert isinstance(svc.payment_notices, StripeWebhooks)
    finally:
        container.close()
    with pytest.raises(ValueError, match="LASTMILE_STRIPE_API_KEY"):
        build(Settings(data_dir=tmp_path, payments="stripe"))
