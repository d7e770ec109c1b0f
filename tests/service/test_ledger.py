"""Real orders through the platform post a ledger that balances and agrees with them, on
SQLite and PostgreSQL, in a dollar tenant and a yen tenant; redelivery posts once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from journeys import to_pickup
from lastmile.adapters.bus.outbox import IdempotentHandler, relay_once
from lastmile.app import fulfilment, ledger, pay, queries, shifts
from lastmile.app.tenancy import acting_as
from lastmile.app.tenants import create_tenant
from lastmile.bootstrap import install_ledger
from lastmile.core.geo import Point
from lastmile.core.orders import Actor, ActorKind, DeliveryProof
from lastmile.sim.seed import seed_demo, tenant_region_id

DROP = Point(lat=37.445, lng=-122.15)


def _place(p, seed, consumer, tip):  # type: ignore[no-untyped-def]
    from lastmile.app.ordering import LineRequest, OrderRequest, place_order

    m = queries.get_merchant(p.services, seed.merchant_ids[0])
    req = OrderRequest(consumer_id=seed.consumer_ids[consumer], merchant_id=m.id,
                       lines=(LineRequest(item_id=m.menu[0].id, quantity=2),), dropoff=DROP,
                       tip_minor=tip)
    return place_order(p.services, req, idempotency_key=f"k-{consumer}-{tip}").order


def _to_pickup(p, order, courier_id):  # type: ignore[no-untyped-def]
    return to_pickup(p, order.id, order.merchant_id, courier_id,
                     device_id=f"phone-{courier_id}")


def _histories(p, seed):  # type: ignore[no-untyped-def]
    """A delivery with a tip, cancellations at three states by three actors, an open order."""
    svc = p.services
    done = _place(p, seed, 0, 300)
    courier = _to_pickup(p, done, seed.courier_ids[0])
    fulfilment.pick_up(svc, done.id, actor=courier)
    fulfilment.courier_arrive(svc, done.id, actor=courier)
    fulfilment.deliver(svc, done.id, proof=DeliveryProof(note="door"), actor=courier)
    by_consumer = _place(p, seed, 1, 0)
    fulfilment.confirm_order(svc, by_consumer.id, prep_estimate_s=600,
                             actor=Actor(kind=ActorKind.MERCHANT, id=by_consumer.merchant_id))
    fulfilment.cancel_order(svc, by_consumer.id, reason="too slow",
                            actor=Actor(kind=ActorKind.CONSUMER, id=by_consumer.consumer_id))
    by_merchant = _place(p, seed, 2, 100)
    _to_pickup(p, by_merchant, seed.courier_ids[1])
    fulfilment.cancel_order(svc, by_merchant.id, reason="out of stock",
                            actor=Actor(kind=ActorKind.MERCHANT, id=by_merchant.merchant_id))
    by_ops = _place(p, seed, 3, 50)
    fulfilment.pick_up(svc, by_ops.id, actor=_to_pickup(p, by_ops, seed.courier_ids[2]))
    fulfilment.cancel_order(svc, by_ops.id, reason="spilled",
                            actor=Actor(kind=ActorKind.OPS, id="ops"))
    still_open = _place(p, seed, 0, 0)
    return done, by_consumer, by_merchant, by_ops, still_open


def _drain(p):  # type: ignore[no-untyped-def]
    while relay_once(p.services, p.container.bus) > 0:
        pass


def test_real_orders_post_a_balanced_ledger_that_agrees_with_them(platform):
    install_ledger(platform.container)
    svc = platform.services
    done, by_consumer, by_merchant, by_ops, still_open = _histories(platform, platform.seed)
    with acting_as("acme:tokyo"):
        create_tenant(svc, "acme:tokyo", config={"currency": "JPY"})
        yen_seed = seed_demo(svc, seed=6, merchants=2, consumers=4, couriers=3,
                             region_id=tenant_region_id("acme:tokyo"))
        yen = _histories(platform, yen_seed)
    _drain(platform)
    report = ledger.check(svc)
    assert report.ok, report.problems
    assert report.orders_checked == 5 and report.unposted_orders == ()
    charged = ledger.balance(svc, "processor_clearing")["USD"]
    assert charged == (done.prices.total.amount_minor
                       + by_consumer.prices.subtotal.amount_minor
                       + by_consumer.prices.service_fee.amount_minor
                       + by_consumer.prices.tax.amount_minor)
    held = ledger.balance(svc, "processor_holds")
    assert held == {"USD": still_open.prices.total.amount_minor}
    courier_1 = ledger.balance(svc, f"courier_payable:{platform.seed.courier_ids[1]}")
    assert courier_1 == {"USD": -by_merchant.prices.delivery_fee.amount_minor}  # no tip
    with acting_as("acme:tokyo"):
        yen_report = ledger.check(svc)
        assert yen_report.ok and yen_report.orders_checked == 5, yen_report.problems
        assert set(ledger.balance(svc, "platform_revenue")) == {"JPY"}
        assert ledger.balance(svc, "processor_clearing")["JPY"] == (
            yen[0].prices.total.amount_minor + yen[1].prices.subtotal.amount_minor
            + yen[1].prices.service_fee.amount_minor + yen[1].prices.tax.amount_minor)
    assert "JPY" not in ledger.balance(svc, "platform_revenue")  # tenants stay apart


def test_refunds_credits_and_payouts_keep_it_balanced_and_a_retry_posts_once(platform):
    install_ledger(platform.container)
    svc = platform.services
    done, by_consumer, *_ = _histories(platform, platform.seed)
    _drain(platform)
    first = ledger.give_back(svc, done.id, 500, key="refund-1")
    again = ledger.give_back(svc, done.id, 500, key="refund-1")
    assert first.posted is not None and again.posted is None
    ledger.give_back(svc, by_consumer.id, 100, key="credit-1", as_credit=True)
    merchant = f"merchant_payable:{done.merchant_id}"
    owed = -ledger.balance(svc, merchant)["USD"]
    assert ledger.pay_out(svc, merchant, "USD", key="payout-1") is not None
    assert ledger.balance(svc, merchant) == {"USD": 0}
    assert ledger.balance(svc, f"credits:{by_consumer.consumer_id}") == {"USD": -100}
    lines = ledger.statement(svc, merchant)
    assert lines[-1].line.kind.value == "payout" and lines[-1].line.amount_minor == owed
    assert lines[-1].running_minor == 0
    report = ledger.check(svc)
    assert report.ok, report.problems


def test_a_redelivered_event_posts_nothing_twice(platform):
    install_ledger(platform.container)
    svc = platform.services
    done, *_ = _histories(platform, platform.seed)
    _drain(platform)
    with svc.uow(read_only=True) as uow:
        before = uow.ledger.rows()
        events = uow.events.for_subject(done.id)
    delivered = next(e for e in events if e.type == "order.delivered")
    again = IdempotentHandler(svc, ledger.SUBSCRIBER,
                              lambda e, uow: ledger.on_event(e, uow, svc))
    again(delivered)  # the inbox knows it
    fresh = IdempotentHandler(svc, "ledger-replay",
                              lambda e, uow: ledger.on_event(e, uow, svc))
    fresh(delivered)  # a new inbox name: the transactions' keys still refuse it
    with svc.uow(read_only=True) as uow:
        assert uow.ledger.rows() == before


def test_ledger_check_exits_0_when_balanced_and_1_when_a_posting_is_forged(sqlite_platform,
                                                                           tmp_path):
    from lastmile.cli import app

    p = sqlite_platform
    install_ledger(p.container)
    _histories(p, p.seed)
    _drain(p)
    args = ["--data-dir", str(tmp_path)]
    ok = CliRunner().invoke(app, ["ledger", "check", *args])
    assert ok.exit_code == 0, ok.output
    assert "balanced" in ok.output
    shown = CliRunner().invoke(app, ["ledger", "balance", "processor_clearing", *args])
    assert shown.exit_code == 0 and "USD" in shown.output
    listed = CliRunner().invoke(app, ["ledger", "statement", "platform_revenue", *args])
    assert listed.exit_code == 0 and "capture" in listed.output
    bad = CliRunner().invoke(app, ["ledger", "balance", "wallet:x", *args])
    assert bad.exit_code == 2
    with p.container.engine.begin() as conn:  # forge history past the trigger
        conn.execute(sa.text("DROP TRIGGER ledger_postings_no_update"))
        conn.execute(sa.text("UPDATE ledger_postings SET amount_minor = amount_minor + 1 "
                             "WHERE id = (SELECT MIN(id) FROM ledger_postings)"))
    forged = CliRunner().invoke(app, ["ledger", "check", *args])
    assert forged.exit_code == 1 and "NOT balanced" in forged.output


def test_drive_deliveries_post_the_delivery_fee_and_tip_and_keep_it_balanced(platform):
    from drive_helpers import a_request, to_dropoff

    from lastmile.app import drive
    from lastmile.core.delivery.proof import GivenProof

    install_ledger(platform.container)
    svc = platform.services
    view = drive.create_delivery(svc, a_request(platform))
    courier = to_dropoff(platform, view.order.id)
    drive.courier_deliver(svc, view.order.id, given=GivenProof(photo_ref="p.jpg"), actor=courier)
    _drain(platform)
    report = ledger.check(svc)
    assert report.ok and report.orders_checked == 1, report.problems
    prices = view.order.prices
    with svc.uow(read_only=True) as uow:  # the pay pipeline's amount for the trip, tip aside
        trip = pay.trip_pay(uow, svc, uow.orders.get(view.order.id))
    assert trip is not None and trip.amount_minor > 0
    assert ledger.balance(svc, "processor_clearing") == {"USD": prices.total.amount_minor}
    assert ledger.balance(svc, f"courier_payable:{courier.id}") == {
        "USD": -(prices.tip.amount_minor + trip.amount_minor)}
    assert ledger.balance(svc, "platform_revenue") == {
        "USD": trip.amount_minor - prices.delivery_fee.amount_minor}  # the fee less the pay


def test_a_shift_below_its_guarantee_is_topped_up_once_when_it_ends(platform):
    """The pay statement's guarantee top-up is posted when the shift ends (its event), once,
    and the ledger still balances; the courier's account then holds the statement's total."""
    install_ledger(platform.container)
    svc = platform.services
    done = _place(platform, platform.seed, 0, 300)
    courier = _to_pickup(platform, done, platform.seed.courier_ids[0])
    fulfilment.pick_up(svc, done.id, actor=courier)
    fulfilment.courier_arrive(svc, done.id, actor=courier)
    fulfilment.deliver(svc, done.id, proof=DeliveryProof(note="door"), actor=courier)
    platform.clock.advance(3 * 3600)  # three hours on shift for one order: below the minimum
    shift_id = queries.get_courier(svc, courier.id).shift_id
    shifts.end_shift(svc, courier.id, actor=courier, live=platform.container.live)
    _drain(platform)
    _drain(platform)  # a second pass finds nothing new to post
    statement = pay.shift_statement(svc, shift_id, actor=courier).statement
    assert statement.top_up.amount_minor > 0
    assert ledger.balance(svc, f"courier_payable:{courier.id}") == {
        "USD": -statement.total.amount_minor}
    report = ledger.check(svc)
    assert report.ok, report.problems


def test_two_relays_posting_the_same_fact_at_once_post_it_once(platform):
    import threading

    from lastmile.core.ledger import orders as lo

    if platform.container.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer: two units of work never overlap")
    svc = platform.services
    order = _place(platform, platform.seed, 0, 0)
    hold = lo.authorisation(order)
    barrier, stored = threading.Barrier(2), []

    def post_once() -> None:
        with svc.uow() as uow:
            barrier.wait(timeout=10)
            stored.append(ledger.post(uow, svc, hold) is not None)
            uow.commit()

    threads = [threading.Thread(target=post_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(stored) == [False, True]
    with svc.uow(read_only=True) as uow:
        assert len(uow.ledger.rows()) == 2  # one transaction of two postings
