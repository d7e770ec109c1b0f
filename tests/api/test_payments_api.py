"""Payments over HTTP: a declined card is a 402 and no order; ops read an order's payment
and refund it with an Idempotency-Key."""

from __future__ import annotations

from journeys import to_pickup
from lastmile.app import fulfilment, ledger, payments
from lastmile.core.orders import DeliveryProof


def _body(api, **extra):  # type: ignore[no-untyped-def]
    merchant = api.platform.seed.merchant_ids[0]
    menu = api.client.get(f"/v1/consumer/merchants/{merchant}/menu", headers=api.h("consumer"))
    item = menu.json()["items"][0]["id"]
    return {"merchant_id": merchant, "items": [{"item_id": item, "quantity": 1}],
            "dropoff": {"lat": 37.445, "lng": -122.15}, **extra}


def _place(api, key="k-1", **extra):  # type: ignore[no-untyped-def]
    return api.client.post("/v1/consumer/orders", json=_body(api, **extra),
                           headers=api.h("consumer", **{"Idempotency-Key": key}))


def _deliver(api, oid):  # type: ignore[no-untyped-def]
    """Deliver the order, capture its payment and post it on the ledger (the subscribers'
    work: this client runs without the background workers)."""
    p = api.platform
    svc, courier_id = p.services, p.seed.courier_ids[0]
    courier = to_pickup(p, oid, p.seed.merchant_ids[0], courier_id, device_id="phone-1")
    fulfilment.pick_up(svc, oid, actor=courier)
    fulfilment.courier_arrive(svc, oid, actor=courier)
    fulfilment.deliver(svc, oid, proof=DeliveryProof(note="door"), actor=courier)
    payments.capture_order(svc, order_id=oid)
    with svc.uow() as uow:
        order = uow.orders.get(oid)
        ledger.post_authorisation(uow, svc, order)
        ledger.post_delivery(uow, svc, order)
        uow.commit()


def test_a_declined_card_is_a_402_problem_and_no_order(api):
    r = _place(api, card_token="tok_chargeDeclined")
    assert r.status_code == 402, r.text
    problem = r.json()
    assert problem["code"] == "payment_declined" and problem["reason"] == "card_declined"
    assert "declined" in problem["detail"]
    orders = api.client.get("/v1/consumer/orders", headers=api.h("consumer")).json()["orders"]
    assert orders == []


def test_ops_see_the_hold_and_refund_once_per_key(api):
    oid = _place(api).json()["id"]
    c = api.client
    held = c.get(f"/v1/ops/orders/{oid}/payment", headers=api.h("ops"))
    assert held.status_code == 200 and held.json()["status"] == "authorised"
    assert held.json()["processor"] == "builtin"
    not_yet = c.post(f"/v1/ops/orders/{oid}/refund", json={"amount_minor": 100},
                     headers=api.h("ops", **{"Idempotency-Key": "r-1"}))
    assert not_yet.status_code == 409 and not_yet.json()["code"] == "payment_not_refundable"
    _deliver(api, oid)  # what the capture and ledger subscribers do on delivery, by hand
    first = c.post(f"/v1/ops/orders/{oid}/refund", json={"amount_minor": 100},
                   headers=api.h("ops", **{"Idempotency-Key": "r-2"}))
    again = c.post(f"/v1/ops/orders/{oid}/refund", json={"amount_minor": 100},
                   headers=api.h("ops", **{"Idempotency-Key": "r-2"}))
    assert first.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["payment"]["refunded_minor"] == 100
    assert again.json()["payment"]["status"] == "partially_refunded"
    # The card refund is on the ledger too, once: what is left to give back fell by 100.
    svc = api.platform.services
    with svc.uow(read_only=True) as uow:
        charged = uow.orders.get(oid).prices.total.amount_minor
    assert ledger.left_to_give_back(svc, oid).amount_minor == charged - 100
    assert again.json()["refund"]["refundable_minor"] == charged - 100
    assert ledger.check(svc).ok
    no_key = c.post(f"/v1/ops/orders/{oid}/refund", json={"amount_minor": 100},
                    headers=api.h("ops"))
    assert no_key.status_code == 422


def test_the_stripe_webhook_is_404_when_not_configured(api):
    r = api.client.post("/v1/payments/stripe/webhook", content=b"{}",
                        headers={"Stripe-Signature": "t=1,v1=00"})
    assert r.status_code == 404 and r.json()["code"] == "stripe_webhooks_off"
