"""Refund requests end to end on SQLite and PostgreSQL: a consumer asks about a delivered
order, the rules decide, an approval posts on the ledger (which still balances), a retry
posts once, and nobody reaches another consumer's or tenant's order."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from journeys import to_pickup
from lastmile.adapters.bus.outbox import relay_once
from lastmile.api.app import create_app
from lastmile.app import fulfilment, ledger, payments, queries, refunds
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.app.tenancy import acting_as
from lastmile.app.tenants import create_tenant
from lastmile.bootstrap import install_ledger, install_payments
from lastmile.core.errors import Conflict, NotFound
from lastmile.core.geo import Point
from lastmile.core.orders import DeliveryProof
from lastmile.core.payments import PaymentStatus
from lastmile.core.refunds import ItemLine, Outcome, Reason, RefundRequest, Status
from lastmile.sim.seed import seed_demo, tenant_region_id

DROP = Point(lat=37.445, lng=-122.15)


def _delivered(p, seed, consumer=0, *, photo=None, key="k"):  # type: ignore[no-untyped-def]
    svc = p.services
    m = queries.get_merchant(svc, seed.merchant_ids[0])
    order = place_order(svc, OrderRequest(
        consumer_id=seed.consumer_ids[consumer], merchant_id=m.id,
        lines=(LineRequest(item_id=m.menu[0].id, quantity=2),), dropoff=DROP, tip_minor=200),
        idempotency_key=f"{key}-{consumer}").order
    cid = seed.courier_ids[consumer % len(seed.courier_ids)]
    courier = to_pickup(p, order.id, order.merchant_id, cid, device_id=f"phone-{cid}-{key}")
    fulfilment.pick_up(svc, order.id, actor=courier)
    fulfilment.courier_arrive(svc, order.id, actor=courier)
    proof = DeliveryProof(photo_ref=photo) if photo else DeliveryProof(note="door")
    fulfilment.deliver(svc, order.id, proof=proof, actor=courier)
    while relay_once(svc, p.container.bus) > 0:
        pass
    return queries.get_order(svc, order.id, who=_ops())


def _ops():  # type: ignore[no-untyped-def]
    from lastmile.app.auth import Principal

    return Principal(role="ops", subject_id="ops-1")


def _missing(order, qty=1):  # type: ignore[no-untyped-def]
    return RefundRequest(order_id=order.id, reason=Reason.MISSING_ITEM,
                         items=(ItemLine(item_id=order.lines[0].item_id, quantity=qty),))


def test_an_approved_request_posts_once_and_the_ledger_still_balances(platform):
    install_ledger(platform.container)
    svc = platform.services
    order = _delivered(platform, platform.seed)
    before = ledger.balance(svc, "refunds")
    first = refunds.request_refund(svc, order.consumer_id, _missing(order), idempotency_key="r1")
    again = refunds.request_refund(svc, order.consumer_id, _missing(order), idempotency_key="r1")
    assert first.case.status is Status.APPROVED and not first.replayed
    assert again.replayed and again.case.id == first.case.id
    line = order.lines[0].unit_price.amount_minor
    share = round(order.prices.tax.amount_minor * line / order.prices.subtotal.amount_minor)
    assert first.case.decision.amount.amount_minor == line + share
    assert ledger.balance(svc, "refunds")["USD"] - before.get("USD", 0) == line + share
    with svc.uow(read_only=True) as uow:
        posted = uow.ledger.by_key(first.case.ledger_key)
        events = [e.type for e in uow.events.for_subject(order.id)]
    assert posted is not None and posted.transaction.kind.value == "refund"
    assert events.count("refund.requested") == 1 and events.count("refund.decided") == 1
    report = ledger.check(svc)
    assert report.ok, report.problems


def test_an_approved_card_refund_reaches_the_processor_once_through_the_bus(platform):
    """The request posts the refund on the ledger; its ``refund.decided`` event has the
    payment subscriber refund the card with the ledger's key, once however often relayed."""
    install_ledger(platform.container)
    install_payments(platform.container)
    svc = platform.services
    order = _delivered(platform, platform.seed)  # relayed: the capture subscriber ran
    assert payments.payment_of(svc, order.id).status is PaymentStatus.CAPTURED
    done = refunds.request_refund(svc, order.consumer_id, _missing(order), idempotency_key="r1")
    assert done.case.status is Status.APPROVED and not done.case.decision.as_credit
    for _ in range(2):
        while relay_once(svc, platform.container.bus) > 0:
            pass
    pay = payments.payment_of(svc, order.id)
    assert pay.refunded_minor == done.case.decision.amount.amount_minor
    assert pay.status is PaymentStatus.PARTIALLY_REFUNDED
    assert ledger.check(svc).ok


def test_never_gives_back_more_than_was_captured(platform):
    install_ledger(platform.container)
    svc = platform.services
    order = _delivered(platform, platform.seed)
    ledger.give_back(svc, order.id, order.prices.total.amount_minor - 100, key="big")
    done = refunds.request_refund(svc, order.consumer_id, _missing(order, 2),
                                  idempotency_key="r2")
    assert done.case.decision.outcome is Outcome.PARTIAL
    assert done.case.decision.amount.amount_minor == 100
    again = refunds.request_refund(svc, order.consumer_id, _missing(order), idempotency_key="r3")
    assert again.case.status is Status.REJECTED and again.case.decision.code == "nothing_left"
    assert ledger.check(svc).ok


def test_a_proof_photo_sends_never_arrived_to_ops_who_credit_it(platform):
    install_ledger(platform.container)
    svc = platform.services
    order = _delivered(platform, platform.seed, photo="ph_42")
    asked = refunds.request_refund(svc, order.consumer_id, RefundRequest(
        order_id=order.id, reason=Reason.NEVER_ARRIVED), idempotency_key="r4")
    assert asked.case.status is Status.PENDING_REVIEW
    assert ledger.balance(svc, f"credits:{order.consumer_id}") == {}
    queue = refunds.list_requests(svc, status=Status.PENDING_REVIEW)
    assert [c.id for c in queue] == [asked.case.id]
    done = refunds.decide_by_ops(svc, asked.case.id, outcome=Outcome.CREDIT, amount_minor=500,
                                 reason="photo shows another door", ops_id="ops-1")
    assert done.status is Status.APPROVED and done.decision.code == "approved_by_ops"
    assert ledger.balance(svc, f"credits:{order.consumer_id}") == {"USD": -500}
    with pytest.raises(Conflict):
        refunds.decide_by_ops(svc, asked.case.id, outcome=Outcome.REFUND, amount_minor=1,
                              reason="again", ops_id="ops-1")
    assert refunds.get_request(svc, asked.case.id, consumer_id=None).decided_at is not None
    assert ledger.check(svc).ok


def test_another_consumers_or_tenants_order_is_not_found(platform):
    install_ledger(platform.container)
    svc = platform.services
    order = _delivered(platform, platform.seed)
    other = platform.seed.consumer_ids[1]
    with pytest.raises(NotFound):
        refunds.request_refund(svc, other, _missing(order), idempotency_key="r5")
    mine = refunds.request_refund(svc, order.consumer_id, _missing(order), idempotency_key="r6")
    with pytest.raises(NotFound):
        refunds.get_request(svc, mine.case.id, consumer_id=other)
    with acting_as("acme:tokyo"):
        create_tenant(svc, "acme:tokyo", config={"currency": "JPY"})
        seed_demo(svc, seed=6, merchants=2, consumers=2, couriers=2,
                  region_id=tenant_region_id("acme:tokyo"))
        with pytest.raises(NotFound):
            refunds.request_refund(svc, order.consumer_id, _missing(order),
                                   idempotency_key="r7")
        with pytest.raises(NotFound):
            refunds.get_request(svc, mine.case.id, consumer_id=None)
        assert refunds.list_requests(svc) == []


def test_the_api_asks_replays_and_lets_ops_decide(platform):
    install_ledger(platform.container)
    order = _delivered(platform, platform.seed, photo="ph_7")
    me = {"Authorization": f"Bearer {platform.key('consumer', order.consumer_id)}"}
    ops = {"Authorization": f"Bearer {platform.key('ops', 'ops-1')}"}
    url = f"/v1/consumer/orders/{order.id}/refund-requests"
    body = {"reason": "damaged", "items": [{"item_id": order.lines[0].item_id, "quantity": 1}],
            "photo_ref": "img_9", "note": "box crushed"}
    with TestClient(create_app(platform.container, start_workers=False)) as c:
        r = c.post(url, json=body, headers={**me, "Idempotency-Key": "a1"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["status"] == "approved" and made["decision"]["code"] == "damaged_approved"
        r2 = c.post(url, json=body, headers={**me, "Idempotency-Key": "a1"})
        assert r2.status_code == 200 and r2.json()["id"] == made["id"]
        assert r2.headers["Idempotent-Replayed"] == "true"
        assert c.get(f"/v1/consumer/refund-requests/{made['id']}", headers=me).json() == made
        bad = c.post(url, json={**body, "items": [{"item_id": "nope", "quantity": 1}]},
                     headers={**me, "Idempotency-Key": "a2"})
        assert bad.status_code == 422 and "items" in bad.text
        r = c.post(url, json={"reason": "never_arrived"}, headers={**me, "Idempotency-Key": "a3"})
        pending = r.json()
        assert pending["status"] == "pending_review", pending
        listed = c.get("/v1/ops/refund-requests?status=pending_review", headers=ops).json()
        assert [x["id"] for x in listed["refund_requests"]] == [pending["id"]]
        assert c.post(f"/v1/ops/refund-requests/{pending['id']}/decide", headers=me,
                      json={"outcome": "reject", "reason": "no"}).status_code == 403
        r = c.post(f"/v1/ops/refund-requests/{pending['id']}/decide", headers=ops,
                   json={"outcome": "reject", "reason": "photo shows the door"})
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        other = {"Authorization":
                 f"Bearer {platform.key('consumer', platform.seed.consumer_ids[1])}"}
        assert c.get(f"/v1/consumer/refund-requests/{made['id']}",
                     headers=other).status_code == 404
        assert c.post(url, json=body, headers={**other, "Idempotency-Key": "a1"}
                      ).status_code == 404
    assert ledger.check(platform.services).ok


def _at_once(svc, calls):  # type: ignore[no-untyped-def]
    import threading

    barrier, out = threading.Barrier(len(calls)), []

    def run(call):  # type: ignore[no-untyped-def]
        barrier.wait(timeout=10)
        try:
            out.append(call())
        except Conflict as e:
            out.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def test_requests_at_once_post_once_and_never_more_than_captured(platform):
    if platform.container.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer: two units of work never overlap")
    install_ledger(platform.container)
    svc = platform.services
    order = _delivered(platform, platform.seed)
    con = order.consumer_id
    same = _at_once(svc, [lambda: refunds.request_refund(svc, con, _missing(order),
                                                         idempotency_key="same")] * 2)
    assert len({r.case.id for r in same}) == 1 and sorted(r.replayed for r in same) == [
        False, True]
    ledger.give_back(svc, order.id, order.prices.total.amount_minor
                     - same[0].case.decision.amount.amount_minor - 300, key="most")
    two = _at_once(svc, [lambda k=k: refunds.request_refund(svc, con, _missing(order),
                                                            idempotency_key=k)
                         for k in ("x", "y")])
    given = [r for r in two if not isinstance(r, Conflict)]
    assert len(given) == 1 and given[0].case.decision.amount.amount_minor == 300, two
    with svc.uow(read_only=True) as uow:
        assert ledger.refundable(uow, order).amount_minor == 0
    assert ledger.check(svc).ok
