"""One set of repository behaviours, run against the fake unit of work and the SQL one
(SQLite always, PostgreSQL when marked): the fake the use-case tests run on stays honest."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from databases import drop_schema, pg_schema_url, postgres_available
from fakes import FakeUnitOfWork, FakeUnitOfWorkFactory, an_order
from lastmile.adapters.db.engine import make_engine, migrate, sqlite_url
from lastmile.adapters.db.uow import SqlUnitOfWorkFactory
from lastmile.app import ports
from lastmile.app.events import Event
from lastmile.app.ports import ApiKeyRecord, IdempotencyRecord
from lastmile.core.delivery.model import Contact, Delivery, DriveQuote
from lastmile.core.delivery.notices import NoticeKind, Notification
from lastmile.core.errors import Conflict
from lastmile.core.geo import Point, Polygon
from lastmile.core.model import Courier, CourierStatus, Merchant, Region, Vehicle
from lastmile.core.offers import Offer, OfferStatus
from lastmile.core.orders import OrderStatus
from lastmile.core.sandbox import Capture, CaptureChannel
from lastmile.core.webhooks import Endpoint, Message

P = Point(lat=37.44, lng=-122.16)
REGION = Region(id="reg_1", name="R", market="r", time_zone="UTC", currency="USD",
                polygon=Polygon(vertices=(Point(lat=37.0, lng=-123.0),
                                          Point(lat=37.0, lng=-122.0),
                                          Point(lat=38.0, lng=-122.0))))


@pytest.fixture(params=["fake", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def uow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ports.UnitOfWorkFactory]:
    """An empty database with one region, behind a unit-of-work factory."""
    schema = None
    if request.param == "fake":
        factory: ports.UnitOfWorkFactory = FakeUnitOfWorkFactory()
        engine = None
    else:
        url = sqlite_url(tmp_path)
        if request.param == "postgresql":
            if reason := postgres_available():
                pytest.skip(reason)
            url, schema = pg_schema_url()
        engine = make_engine(url)
        migrate(engine)
        factory = SqlUnitOfWorkFactory(engine)
    with factory() as u:
        u.regions.add(REGION)
        u.commit()
    try:
        yield factory
    finally:
        if engine is not None:
            engine.dispose()
        if schema:
            drop_schema(schema)


def a_courier(id: str = "cou_1", **kw: object) -> Courier:
    return Courier(**{"id": id, "region_id": "reg_1", "name": id, "vehicle": Vehicle.BICYCLE,
                      "location": P, **kw})  # type: ignore[arg-type]


def a_merchant(id: str = "mer_1", at: Point = P) -> Merchant:
    return Merchant(id=id, region_id="reg_1", name=id, location=at, prep_time_s=600)


def an_offer(id: str = "off_1", **kw: object) -> Offer:
    return Offer(**{"id": id, "region_id": "reg_1", "courier_id": "cou_1", "order_ids": ("ord_1",),
                    "created_at": 10.0, "expires_at": 70.0, **kw})  # type: ignore[arg-type]


def an_event(id: str, *, type: str = "order.placed", subject: str = "ord_1",
             at: float = 10.0) -> Event:
    return Event(event_id=id, type=type, occurred_at=at, region_id="reg_1", subject_id=subject,
                 actor_kind="system", actor_id="system", data={"n": 1})


def test_writes_are_invisible_to_another_unit_until_commit(uow):
    with uow() as writer:
        writer.couriers.add(a_courier())
        with uow(read_only=True) as reader:
            assert reader.couriers.get("cou_1") is None
        writer.commit()
    with uow(read_only=True) as reader:
        assert reader.couriers.get("cou_1") == a_courier()


def test_rollback_and_leaving_without_commit_discard_the_writes(uow):
    with uow() as u:
        u.couriers.add(a_courier("cou_a"))
        u.rollback()
        u.couriers.add(a_courier("cou_b"))
        u.commit()
        u.couriers.add(a_courier("cou_c"))
    with uow(read_only=True) as u:
        assert [c.id for c in u.couriers.list_region("reg_1")] == ["cou_b"]


def test_a_read_only_unit_refuses_to_commit(uow):
    with uow(read_only=True) as u, pytest.raises(AssertionError):
        u.commit()


def test_an_order_saved_over_a_stale_version_is_a_conflict(uow):
    order = an_order()
    with uow() as u:
        u.orders.add(order)
        u.commit()
    moved = replace(order, status=OrderStatus.CONFIRMED, version=order.version + 1)
    with uow() as u:
        u.orders.save(moved, expected_version=order.version)
        u.commit()
    with uow() as u, pytest.raises(Conflict) as err:
        u.orders.save(replace(moved, version=9), expected_version=order.version)
    assert err.value.code == "concurrent_update"
    with uow(read_only=True) as u:
        assert u.orders.get(order.id) == moved


@pytest.mark.parametrize("repo, value", [
    ("couriers", a_courier()), ("merchants", a_merchant()), ("offers", an_offer())])
def test_a_versioned_aggregate_saved_over_a_stale_version_is_a_conflict(uow, repo, value):
    """HELPERS.md's contract; aggregates gain ``version`` in the ``consistency`` branch."""
    if not hasattr(value, "version"):
        pytest.skip(f"{type(value).__name__} has no version yet (saved blind)")
    with uow() as u:
        getattr(u, repo).add(value)
        u.commit()
    with uow() as u:
        saved = getattr(u, repo).save(value)
        u.commit()
    assert saved.version == value.version + 1
    with uow() as u, pytest.raises(Conflict) as err:
        getattr(u, repo).save(value)
    assert err.value.code == "concurrent_update"


def test_saving_a_row_that_is_not_stored_is_a_conflict_and_stores_nothing(uow):
    with uow() as u:
        with pytest.raises(Conflict) as caught:
            u.couriers.save(a_courier("cou_ghost"))
        assert caught.value.code == "concurrent_update"
        assert u.couriers.get("cou_ghost") is None


def test_orders_list_newest_first_by_filters_and_count_by_status(uow):
    with uow() as u:
        for i, (at, status) in enumerate([(3.0, OrderStatus.PLACED), (1.0, OrderStatus.CONFIRMED),
                                          (2.0, OrderStatus.PLACED)]):
            u.orders.add(an_order(id=f"ord_{i}", placed_at=at, status=status,
                                  consumer_id="con_9" if i == 2 else "con_1"))
        u.commit()
    with uow(read_only=True) as u:
        assert [o.id for o in u.orders.list()] == ["ord_0", "ord_2", "ord_1"]
        assert [o.id for o in u.orders.list(oldest_first=True, limit=2)] == ["ord_1", "ord_2"]
        assert [o.id for o in u.orders.list(statuses=[OrderStatus.PLACED],
                                            consumer_id="con_1")] == ["ord_0"]
        assert u.orders.count_by_status("reg_1") == {"placed": 2, "confirmed": 1}
        assert sorted(u.orders.get_many(["ord_1", "ord_x", "ord_2"])) == ["ord_1", "ord_2"]
        assert u.orders.status_of("ord_1") is OrderStatus.CONFIRMED
        assert u.orders.status_of("ord_x") is None
        placed = u.orders.dropoffs("reg_1", statuses={OrderStatus.PLACED}, limit=5)
        assert placed == (an_order().dropoff,) * 2
        assert u.orders.dropoffs("reg_1", statuses={OrderStatus.PLACED}, limit=1) == (
            an_order().dropoff,)
        assert u.orders.dropoffs("reg_2", statuses={OrderStatus.PLACED}, limit=5) == ()


def test_couriers_on_shift_and_counts(uow):
    with uow() as u:
        u.couriers.add(a_courier("cou_2", status=CourierStatus.IDLE))
        u.couriers.add(a_courier("cou_1"))
        u.commit()
    with uow(read_only=True) as u:
        assert [c.id for c in u.couriers.list_region("reg_1")] == ["cou_1", "cou_2"]
        assert [c.id for c in u.couriers.list_region("reg_1", on_shift_only=True)] == ["cou_2"]
        assert u.couriers.count_by_status("reg_1") == {"offline": 1, "idle": 1}


def test_orders_read_together_are_the_stored_ones_after_each_save(uow):
    with uow() as u:
        u.orders.add(an_order(id="ord_1", status=OrderStatus.CONFIRMED))
        u.commit()
    with uow(read_only=True) as u:
        first = u.orders.get_many(["ord_1"])["ord_1"]
        assert first == u.orders.get("ord_1")
    with uow() as u:
        u.orders.save(replace(first, status=OrderStatus.READY), expected_version=first.version)
        u.commit()
    with uow(read_only=True) as u:
        again = u.orders.get_many(["ord_1"])["ord_1"]
        assert again.status is OrderStatus.READY and again == u.orders.get("ord_1")


def test_a_ping_reads_the_courier_its_first_orders_status_and_any_banned_device(uow):
    with uow() as u:
        u.orders.add(an_order(id="ord_1", status=OrderStatus.PICKED_UP))
        u.couriers.add(replace(a_courier("cou_1", status=CourierStatus.BUSY),
                               active_order_ids=("ord_1", "ord_x")))
        u.couriers.add(a_courier("cou_2", status=CourierStatus.IDLE))
        u.couriers.add(replace(a_courier("cou_3", status=CourierStatus.BUSY),
                               active_order_ids=("ord_gone",)))
        u.banned_devices.ban("d_bad", reason="fraud", at=1.0, by="ops")
        u.commit()
    with uow(read_only=True) as u:
        busy = u.couriers.for_ping("cou_1", ["d1"])
        assert busy.courier == u.couriers.get("cou_1")
        assert busy.first_order_status is OrderStatus.PICKED_UP and busy.any_banned is False
        idle = u.couriers.for_ping("cou_2", ["d1", "d_bad"])
        assert idle.first_order_status is None and idle.any_banned is True
        gone = u.couriers.for_ping("cou_3", ["d_bad"])  # one device: its own statement
        assert gone.first_order_status is None and gone.any_banned is True
        assert u.couriers.for_ping("cou_ghost", ["d1"]) is None


def test_merchants_in_a_box_include_its_edges(uow):
    with uow() as u:
        u.merchants.add(a_merchant("mer_b", Point(lat=37.5, lng=-122.1)))
        u.merchants.add(a_merchant("mer_a", Point(lat=37.4, lng=-122.2)))
        u.merchants.add(a_merchant("mer_c", Point(lat=37.6, lng=-122.1)))
        u.commit()
    with uow(read_only=True) as u:
        assert sorted(m.id for m in u.merchants.in_box("reg_1", (37.4, -122.2, 37.5, -122.1))) \
            == ["mer_a", "mer_b"]
        assert [m.id for m in u.merchants.list_region("reg_1")] == ["mer_a", "mer_b", "mer_c"]


def test_a_regions_prep_times_are_its_merchants_without_their_menus(uow):
    from dataclasses import replace

    with uow() as u:
        u.merchants.add(replace(a_merchant("mer_a"), prep_time_s=480))
        u.merchants.add(replace(a_merchant("mer_b"), prep_time_s=900))
        u.commit()
    with uow(read_only=True) as u:
        assert u.merchants.prep_times("reg_1") == {"mer_a": 480, "mer_b": 900}
        assert u.merchants.prep_times("reg_9") == {}


def test_events_come_back_in_append_order_and_outbox_in_order(uow):
    with uow() as u:
        for i, (t, at) in enumerate([("order.placed", 5.0), ("order.ready", 1.0),
                                     ("order.placed", 9.0)]):
            u.events.append(an_event(f"evt_{i}", type=t, at=at))
            u.outbox.add(an_event(f"evt_{i}", type=t, at=at))
        u.commit()
    with uow() as u:
        assert [e.event_id for e in u.events.for_subject("ord_1")] == ["evt_0", "evt_1", "evt_2"]
        assert [e.event_id for e in u.events.of_types("reg_1", ["order.placed"], since=6.0)] \
            == ["evt_2"]
        pending = u.outbox.pending(2)
        assert [p.event.event_id for p in pending] == ["evt_0", "evt_1"]
        assert pending[0].event == an_event("evt_0", at=5.0)
    # Marking rows fanned out is the relay's (EventDeliveries, SQL only: tests/service/test_relay.py).


def test_inbox_idempotency_api_keys_and_bans_record_once(uow):
    record = IdempotencyRecord(scope="s", key="k", request_hash="h", resource_id="r",
                               created_at=1.0)
    with uow() as u:
        assert u.inbox.seen("c", "evt_1") is False
        assert u.inbox.seen("c", "evt_1") is True and u.inbox.seen("d", "evt_1") is False
        u.idempotency.add(record)
        with pytest.raises(Conflict) as err:
            u.idempotency.add(replace(record, resource_id="other"))
        assert err.value.code == "idempotency_key_taken"
        u.api_keys.add(ApiKeyRecord(key_id="key_1", key_hash="abc", role="ops",
                                    subject_id="ops", created_at=1.0))
        assert u.banned_devices.ban("d1", reason="fraud", at=1.0, by="ops") is True
        assert u.banned_devices.ban("d1", reason="again", at=2.0, by="ops") is False
        u.commit()
    with uow(read_only=True) as u:
        assert u.idempotency.get("s", "k") == record and u.idempotency.get("s", "x") is None
        assert u.api_keys.by_hash("abc").key_id == "key_1" and u.api_keys.by_hash("x") is None
        assert u.banned_devices.among(["d1", "d2"]) == frozenset({"d1"})
        assert u.banned_devices.among([]) == frozenset()


def test_pending_offers_oldest_first_by_courier_order_and_region(uow):
    with uow() as u:
        u.offers.add(an_offer("off_1", created_at=10.0))
        u.offers.add(an_offer("off_3", courier_id="cou_2", order_ids=("ord_3",)))
        u.commit()
    with uow() as u:  # one pending offer per courier and per order: close before offering again
        closed = replace(u.offers.get("off_1"), status=OfferStatus.DECLINED, decided_at=30.0)
        u.offers.save(closed)
        u.offers.add(an_offer("off_2", created_at=20.0, order_ids=("ord_1", "ord_2")))
        u.commit()
    with uow(read_only=True) as u:
        assert [o.id for o in u.offers.pending_for_courier("cou_1")] == ["off_2"]
        assert [o.id for o in u.offers.pending_for_order("ord_2")] == ["off_2"]
        assert [o.id for o in u.offers.pending_in_region("reg_1")] == ["off_3", "off_2"]
        assert u.offers.get("off_1").status is OfferStatus.DECLINED


def a_delivery(id: str, ext: str, at: float, merchant: str = "mer_1") -> Delivery:
    return Delivery(id=id, merchant_id=merchant, external_delivery_id=ext, order_id=f"o_{id}",
                    request_hash="h", pickup=P, dropoff=P, contact=Contact(first_name="A"),
                    order_value_minor=100, tip_minor=0, tracking_token=f"t_{id}", created_at=at)


def test_deliveries_are_unique_per_business_and_page_newest_first(uow):
    with uow() as u:
        for i, at in enumerate([1.0, 3.0, 2.0]):
            u.deliveries.add(a_delivery(f"del_{i}", f"x{i}", at))
        u.deliveries.add(a_delivery("del_9", "x0", 1.0, merchant="mer_2"))
        with pytest.raises(Conflict) as err:
            u.deliveries.add(a_delivery("del_8", "x1", 5.0))
        assert err.value.code == "external_delivery_id_taken"
        u.deliveries.set_finished("del_1")
        u.deliveries.save(replace(u.deliveries.by_token("t_del_2"), instructions="ring"))
        u.commit()
    with uow(read_only=True) as u:
        assert [d.id for d in u.deliveries.page("mer_1", limit=2)] == ["del_1", "del_2"]
        assert [d.id for d in u.deliveries.page("mer_1", limit=5, after=(2.0, "del_2"))] \
            == ["del_0"]
        assert [d.id for d in u.deliveries.in_flight(2)] == ["del_0", "del_2"]
        assert [d.id for d in u.deliveries.in_flight(5, after_id="del_0")] == ["del_2", "del_9"]
        assert u.deliveries.by_external("mer_2", "x0").id == "del_9"
        assert u.deliveries.by_order("o_del_2").instructions == "ring"


def test_a_quote_put_twice_keeps_the_last(uow):
    q = DriveQuote(merchant_id="mer_1", external_delivery_id="x", request_hash="h",
                   request={"a": 1}, currency="USD", prices_minor={"total": 500},
                   eta=(1.0, 2.0, 3.0), distance_m=1000, created_at=1.0, expires_at=301.0)
    with uow() as u:
        u.drive_quotes.put(q)
        u.drive_quotes.put(replace(q, request_hash="h2", accepted=True))
        u.commit()
    with uow(read_only=True) as u:
        assert u.drive_quotes.get("mer_1", "x") == replace(q, request_hash="h2", accepted=True)
        assert u.drive_quotes.get("mer_1", "y") is None


def a_message(id: str, event: str, due: float, endpoint: str = "end_1") -> Message:
    return Message(id=id, endpoint_id=endpoint, merchant_id="mer_1", event_id=event,
                   event_type="order.placed", payload={"id": event}, created_at=1.0,
                   next_attempt_at=due)


def test_webhook_messages_once_per_endpoint_and_event_and_leased_when_due(uow):
    with uow() as u:
        u.webhooks.add_endpoint(Endpoint(id="end_1", merchant_id="mer_1", url="https://x.test/h",
                                         secret="s", event_types=(), created_at=1.0))
        u.webhooks.add_endpoint(Endpoint(id="end_2", merchant_id="mer_1", url="https://y.test/h",
                                         secret="s", event_types=(), created_at=2.0))
        u.webhooks.deactivate("end_2")
        assert u.webhooks.enqueue(a_message("msg_1", "evt_1", due=5.0)) is True
        assert u.webhooks.enqueue(a_message("msg_2", "evt_1", due=5.0)) is False
        assert u.webhooks.enqueue(a_message("msg_3", "evt_2", due=3.0)) is True
        assert u.webhooks.enqueue(a_message("msg_4", "evt_3", due=50.0)) is True
        u.webhooks.add_attempt(message_id="msg_1", attempt=1, at=6.0, status_code=500, error="x")
        u.webhooks.add_attempt(message_id="msg_1", attempt=2, at=7.0, status_code=None,
                               error="timeout")
        u.commit()
    with uow() as u:
        assert [e.id for e in u.webhooks.endpoints_for("mer_1")] == ["end_1"]
        assert u.webhooks.endpoint("end_2").active is False
        due = u.webhooks.due(10.0, 10, lease_s=30.0)
        assert [(m.id, m.next_attempt_at) for m in due] == [("msg_3", 3.0), ("msg_1", 5.0)]
        assert u.webhooks.due(10.0, 10) == []  # leased until 40
        assert u.webhooks.message("msg_1").next_attempt_at == 40.0
        assert [a["attempt"] for a in u.webhooks.attempts("msg_1")] == [1, 2]
        assert u.webhooks.attempts("msg_1")[1] == {"attempt": 2, "at": 7.0, "status_code": None,
                                                   "error": "timeout"}
        assert [m.id for m in u.webhooks.messages("mer_1", status="pending", limit=2)] \
            == ["msg_4", "msg_3"]


def a_notice(id: str, event: str, channel: str = "sms", at: float = 1.0) -> Notification:
    return Notification(id=id, event_id=event, kind=NoticeKind.ORDER_CONFIRMED,
                        recipient_kind="consumer", recipient_id="con_1", channel=channel,
                        subject="s", body="b", created_at=at, next_attempt_at=at)


def test_notifications_once_per_event_recipient_and_channel(uow):
    with uow() as u:
        assert u.notifications.add(a_notice("ntf_1", "evt_1")) is True
        assert u.notifications.add(a_notice("ntf_2", "evt_1")) is False
        assert u.notifications.add(a_notice("ntf_3", "evt_1", channel="email", at=2.0)) is True
        u.commit()
    with uow() as u:
        assert [n.id for n in u.notifications.due(1.5, 10, lease_s=60.0)] == ["ntf_1"]
        assert [n.id for n in u.notifications.due(5.0, 10)] == ["ntf_3"]
        assert [n.id for n in u.notifications.list(recipient_id="con_1")] == ["ntf_1", "ntf_3"]


def test_sandbox_captures_list_newest_first_by_channel_and_subject(uow):
    def cap(cid: str, at: float, channel: str = "webhook", subject: str = "ord_1") -> Capture:
        return Capture(id=cid, channel=CaptureChannel(channel), target="https://h.test/x",
                       event_type="delivery.created", subject_id=subject,
                       headers={"X-Lastmile-Signature": "t=1,v1=ab"}, body='{"a":1}',
                       created_at=at)

    with uow() as u:
        for c in (cap("sbx_1", 1.0), cap("sbx_2", 2.0, subject="ord_2"),
                  cap("sbx_3", 3.0, channel="notification", subject="ntf_evt")):
            u.sandbox_captures.add(c)
        u.commit()
    with uow(read_only=True) as u:
        assert [c.id for c in u.sandbox_captures.list()] == ["sbx_3", "sbx_2", "sbx_1"]
        assert [c.id for c in u.sandbox_captures.list(channel="webhook", limit=1)] == ["sbx_2"]
        [one] = u.sandbox_captures.list(subject_id="ord_1")
    assert one == cap("sbx_1", 1.0)


def _port_methods(protocol: type) -> set[str]:
    return {n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_")}


# The relay's queue (leases, SKIP LOCKED claims, fan-out order) is what its tests prove, so
# they run on SQLite and PostgreSQL only; no use case on the fake relays events.
SQL_ONLY = frozenset({"event_deliveries"})


def test_the_fake_implements_every_method_of_every_port():
    """A repository method added to ``app/ports.py`` must be added to the fake too."""
    unit = FakeUnitOfWorkFactory()()
    for name, protocol in ports.UnitOfWork.__annotations__.items():
        if name in SQL_ONLY:
            continue
        repo_type = getattr(ports, protocol) if isinstance(protocol, str) else protocol
        missing = _port_methods(repo_type) - set(dir(getattr(unit, name)))
        assert not missing, f"FakeUnitOfWork.{name} lacks {sorted(missing)}"
    assert isinstance(unit, FakeUnitOfWork)


def test_ledger_posts_a_key_once_and_sums_balances_per_account_and_currency(uow):
    from lastmile.core.ledger.entries import Posted, Posting, Transaction, TxnKind

    def txn(key, amount, currency="USD", order_id="ord_1"):  # type: ignore[no-untyped-def]
        return Transaction(key=key, kind=TxnKind.CAPTURE, currency=currency, order_id=order_id,
                           postings=(Posting(account="processor_clearing", amount_minor=amount,
                                             currency=currency),
                                     Posting(account="platform_revenue", amount_minor=-amount,
                                             currency=currency)))

    with uow() as u:
        assert u.ledger.add(Posted(id="ltx_1", transaction=txn("k1", 500), created_at=1.0))
        assert not u.ledger.add(Posted(id="ltx_2", transaction=txn("k1", 500), created_at=2.0))
        assert u.ledger.add(Posted(id="ltx_3", transaction=txn("k3", 7, "JPY", None),
                                   created_at=3.0))
        u.commit()
    with uow() as u:
        assert u.ledger.by_key("k1").id == "ltx_1"
        assert u.ledger.by_key("k1").transaction == txn("k1", 500)
        assert [p.id for p in u.ledger.of_order("ord_1")] == ["ltx_1"]
        assert u.ledger.balances() == {("processor_clearing", "USD"): 500,
                                       ("platform_revenue", "USD"): -500,
                                       ("processor_clearing", "JPY"): 7,
                                       ("platform_revenue", "JPY"): -7}
        assert u.ledger.balances("platform_revenue") == {("platform_revenue", "USD"): -500,
                                                         ("platform_revenue", "JPY"): -7}
        lines = u.ledger.statement("processor_clearing", currency="JPY")
        assert [(x.key, x.amount_minor, x.kind) for x in lines] == [("k3", 7, TxnKind.CAPTURE)]
        assert len(u.ledger.rows()) == 4


def test_refund_requests_store_once_per_key_list_by_status_and_decide_once(uow):
    from dataclasses import replace

    from lastmile.core.money import Money
    from lastmile.core.refunds import (
        Decision,
        ItemLine,
        Outcome,
        Reason,
        RefundCase,
        RefundRequest,
        Status,
    )

    def case(id, key, *, outcome=Outcome.REFUND, amount=300, at=10.0,  # type: ignore[no-untyped-def]
             consumer="con_1"):
        d = Decision(outcome=outcome, amount=Money(amount_minor=amount, currency="USD"),
                     code="c", reason="r", as_credit=outcome is Outcome.CREDIT)
        return RefundCase(id=id, consumer_id=consumer, status=d.status, decision=d,
                          created_at=at, idempotency_key=key, decided_at=at,
                          request=RefundRequest(order_id="ord_1", reason=Reason.DAMAGED,
                                                items=(ItemLine(item_id="itm_1", quantity=2),),
                                                photo_ref="ph", note="crushed"))

    with uow() as u:
        assert u.refund_requests.add(case("rfr_1", "con_1:a"))
        assert not u.refund_requests.add(case("rfr_2", "con_1:a"))
        assert u.refund_requests.add(case("rfr_3", "con_1:b", outcome=Outcome.CREDIT,
                                          amount=200, at=20.0))
        assert u.refund_requests.add(case("rfr_4", "con_1:c", outcome=Outcome.HUMAN, amount=0,
                                          at=30.0))
        assert u.refund_requests.add(case("rfr_5", "con_2:a", amount=900, consumer="con_2"))
        u.commit()
    with uow() as u:
        assert u.refund_requests.get("rfr_1") == case("rfr_1", "con_1:a")
        assert u.refund_requests.by_key("con_1:b").id == "rfr_3"
        assert u.refund_requests.get("rfr_2") is None
        assert [c.id for c in u.refund_requests.list(status=Status.PENDING_REVIEW)] == ["rfr_4"]
        assert [c.id for c in u.refund_requests.list(limit=2)] == ["rfr_1", "rfr_5"]
        assert u.refund_requests.given_since("con_1", 0.0, "USD") == 500
        assert u.refund_requests.given_since("con_1", 15.0, "USD") == 200
        assert u.refund_requests.given_since("con_1", 0.0, "EUR") == 0
        pending = u.refund_requests.get("rfr_4")
        done = replace(case("rfr_4", "con_1:c", outcome=Outcome.REJECT, amount=0, at=30.0),
                       decided_at=40.0)
        assert u.refund_requests.decide(done, expected=Status.PENDING_REVIEW)
        assert not u.refund_requests.decide(done, expected=Status.PENDING_REVIEW)
        u.commit()
    with uow() as u:
        assert u.refund_requests.get("rfr_4") == done != pending


def _history(order_id: str, placed_at: float, merchant_id: str = "mer_1"):  # noqa: ANN202
    from lastmile.core.eta.features import EtaFeatures
    from lastmile.core.eta.history import HistoryRecord

    features = EtaFeatures(merchant_id=merchant_id, region="reg_1", hour=12, weekday=3,
                           distance_m=1500.0, travel_s=600.0, prep_mean_s=480.0,
                           prep_p90_s=700.0, orders_per_min=(0.2,) * 6,
                           idle_couriers=(3.0,) * 6, items=2, subtotal_minor=2400)
    return HistoryRecord(order_id=order_id, channel="marketplace", placed_at=placed_at,
                         features=features, quoted_low_s=900.0, quoted_s=1200.0,
                         quoted_high_s=1500.0)


def test_eta_history_finishes_a_record_once_and_reads_by_placement_time(uow):
    from lastmile.core.eta.features import EtaOutcome
    from lastmile.core.eta.history import Finish

    done = Finish(status="delivered", finished_at=2000.0, prep_s=400.0, outcome=EtaOutcome(
        assign_s=60.0, to_merchant_s=300.0, wait_s=100.0, to_consumer_s=540.0, total_s=1000.0))
    with uow() as u:
        for i, placed_at in enumerate((1000.0, 3000.0, 2000.0, 4000.0)):
            u.eta_history.add(_history(f"ord_{i}", placed_at))
        assert u.eta_history.finish("ord_0", done)
        assert not u.eta_history.finish("ord_0", done)  # finished already
        assert not u.eta_history.finish("ord_nope", done)
        assert u.eta_history.finish("ord_1", replace(done, finished_at=3500.0, prep_s=900.0))
        assert u.eta_history.finish("ord_2", Finish(
            status="cancelled", finished_at=2100.0, prep_s=None, outcome=None,
            cancelled_from="confirmed"))
        u.commit()
    with uow(read_only=True) as u:
        records = u.eta_history.records()
        assert [r.order_id for r in records] == ["ord_0", "ord_2", "ord_1"]
        assert records[0] == replace(_history("ord_0", 1000.0), finish=done)
        assert [r.order_id for r in u.eta_history.records(since=2000.0, until=3500.0,
                                                          finished_only=False)] == [
            "ord_2", "ord_1"]
        features, outcomes = u.eta_history.training_set()
        assert features == [records[0].features, records[2].features]
        assert outcomes == [done.outcome, done.outcome]
        assert u.eta_history.prep_samples("mer_1", limit=5) == [900.0, 400.0]  # newest first
        assert u.eta_history.prep_samples("mer_1", limit=1) == [900.0]


def test_eta_supply_minutes_add_up_per_region_and_minute(uow):
    with uow() as u:
        u.eta_history.count_order("reg_1", minute=100, idle_couriers=3)
        u.eta_history.count_order("reg_1", minute=100, idle_couriers=5)
        u.eta_history.count_order("reg_1", minute=99, idle_couriers=1)
        u.commit()
    with uow(read_only=True) as u:
        got = sorted(u.eta_history.supply_minutes("reg_1", since_minute=100))
        assert [tuple(m) for m in got] == [(100, 2, 8.0, 2)]
        assert len(u.eta_history.supply_minutes("reg_1", since_minute=0)) == 2
        assert u.eta_history.supply_minutes("reg_2", since_minute=0) == []


def test_experiments_store_a_name_once_move_state_once_and_keep_the_first_exposure(uow):
    from lastmile.app.ports_experiments import Exposure
    from lastmile.core.experiments.assignment import MarketSlot, Span, Variant
    from lastmile.core.experiments.definition import Experiment, Layer, State

    def exp(id_, name, *, created_at, layer="ranking"):  # type: ignore[no-untyped-def]
        return Experiment(
            id=id_, name=name, lever="dispatch", design="market_ab", unit_kind="market",
            variants=(Variant(name="control"),
                      Variant(name="treatment", weight=2.0, params=(("late_weight", 0.5),))),
            salt="s", layer=layer, span=Span(low=0.1, high=0.6), window_s=600.0,
            allocation=(MarketSlot(market="reg_1", variant="treatment", stratum="0.1"),),
            description="d", created_at=created_at)

    with uow() as u:
        assert u.experiments.add(exp("exp_1", "one", created_at=2.0))
        assert not u.experiments.add(exp("exp_2", "one", created_at=3.0))
        assert u.experiments.add(exp("exp_3", "three", created_at=1.0, layer="other"))
        assert u.experiments.add_layer(Layer(name="ranking", holdout=0.1), at=1.0)
        assert not u.experiments.add_layer(Layer(name="ranking", holdout=0.3), at=2.0)
        u.commit()
    with uow() as u:
        stored = u.experiments.get("exp_1")
        assert stored == exp("exp_1", "one", created_at=2.0)
        assert u.experiments.by_name("three").id == "exp_3"
        assert u.experiments.get("exp_2") is None
        assert [e.id for e in u.experiments.list()] == ["exp_3", "exp_1"]
        assert [e.id for e in u.experiments.list(layer="ranking")] == ["exp_1"]
        assert u.experiments.layer("ranking") == Layer(name="ranking", holdout=0.1)
        running = stored.moved(State.RUNNING, at=5.0)
        assert u.experiments.move(running, expected=State.DRAFT)
        assert not u.experiments.move(running, expected=State.DRAFT)
        first = Exposure(experiment_id="exp_1", unit="reg_1", variant="treatment", counts=True,
                         first_at=6.0, region_id="reg_1")
        assert u.experiments.expose(first)
        assert not u.experiments.expose(replace(first, first_at=7.0, variant="control"))
        assert u.experiments.expose(replace(first, unit="reg_0", first_at=5.5, counts=False))
        u.commit()
    with uow(read_only=True) as u:
        assert u.experiments.get("exp_1") == running
        assert [e.id for e in u.experiments.list(state=State.RUNNING)] == ["exp_1"]
        assert u.experiments.exposures("exp_1", limit=10) == [
            replace(first, unit="reg_0", first_at=5.5, counts=False), first]
        assert u.experiments.exposures("exp_1", limit=1)[0].unit == "reg_0"
