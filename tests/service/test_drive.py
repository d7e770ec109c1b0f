"""Drive use cases: their rules on a fake unit of work (``@in_memory``); concurrent creates
and quotes on a real database (SQLite; PostgreSQL when marked)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from drive_helpers import a_request, courier_actor, pump, to_dropoff

from fakes import in_memory
from lastmile.app import drive, notifications, webhooks
from lastmile.app.drive import DeliveryChanges
from lastmile.core.delivery.model import ProofRequirement, TimeWindow, Undeliverable
from lastmile.core.delivery.proof import GivenProof
from lastmile.core.errors import Conflict, InvalidInput, NotFound
from lastmile.core.geo import Point


@in_memory
def test_creating_a_delivery_places_and_confirms_an_order_with_one_delivery_line(platform):
    view = drive.create_delivery(platform.services, a_request(platform))
    order = view.order
    assert order.status.value == "confirmed"
    assert [(li.item_id, li.quantity) for li in order.lines] == [("delivery", 1)]
    assert view.delivery.order_value_minor == 2500
    assert order.prices.tip.amount_minor == 300
    assert view.delivery.tracking_token.startswith("trk_") and not view.replayed
    assert order.consumer_id.startswith("drive_")


@in_memory
def test_the_same_external_id_and_body_returns_the_same_delivery(platform):
    first = drive.create_delivery(platform.services, a_request(platform))
    again = drive.create_delivery(platform.services, a_request(platform))
    assert again.replayed and again.order.id == first.order.id


@in_memory
def test_the_same_external_id_with_a_different_body_is_a_conflict(platform):
    drive.create_delivery(platform.services, a_request(platform))
    with pytest.raises(Conflict) as e:
        drive.create_delivery(platform.services, a_request(platform, tip_minor=999))
    assert e.value.code == "external_delivery_id_reused"


@in_memory
def test_external_ids_are_scoped_per_business(platform):
    a = drive.create_delivery(platform.services, a_request(platform))
    b = drive.create_delivery(platform.services, a_request(
        platform, merchant_id=platform.seed.merchant_ids[1]))
    assert a.order.id != b.order.id


@in_memory
def test_a_quote_accepted_in_time_creates_the_delivery_at_the_quoted_price(platform):
    q = drive.quote_delivery(platform.services, a_request(platform))
    platform.clock.advance(120)
    view = drive.accept_quote(platform.services, q.merchant_id, "ext-1", tip_minor=500)
    assert view.order.prices.delivery_fee.amount_minor == q.prices_minor["delivery_fee"]
    assert view.order.prices.tip.amount_minor == 500
    assert drive.accept_quote(platform.services, q.merchant_id, "ext-1", tip_minor=500).replayed


@in_memory
def test_an_expired_quote_is_refused(platform):
    q = drive.quote_delivery(platform.services, a_request(platform))
    platform.clock.advance(301)
    with pytest.raises(Conflict) as e:
        drive.accept_quote(platform.services, q.merchant_id, "ext-1")
    assert e.value.code == "quote_expired"


@in_memory
def test_an_unreachable_dropoff_window_is_refused(platform):
    now = platform.clock.now()
    req = a_request(platform, dropoff_window=TimeWindow(start_at=now, end_at=now + 30))
    with pytest.raises(InvalidInput) as e:
        drive.create_delivery(platform.services, req)
    assert e.value.code == "dropoff_window_unreachable"


@in_memory
def test_a_dropoff_outside_the_region_is_refused_naming_the_field(platform):
    with pytest.raises(InvalidInput) as e:
        drive.create_delivery(platform.services, a_request(platform, dropoff=Point(lat=0, lng=0)))
    assert (e.value.code, e.value.field) == ("outside_service_area", "dropoff")


@in_memory
def test_updates_change_tip_and_instructions_before_pickup_only(platform):
    svc = platform.services
    view = drive.create_delivery(svc, a_request(platform))
    m = view.delivery.merchant_id
    changed = drive.update_delivery(svc, m, "ext-1", DeliveryChanges(tip_minor=700,
                                                                     instructions="Gate 4"))
    assert changed.order.prices.tip.amount_minor == 700
    assert changed.delivery.instructions == "Gate 4"
    to_dropoff(platform, view.order.id, stop="picked_up")
    with pytest.raises(Conflict) as e:
        drive.update_delivery(svc, m, "ext-1", DeliveryChanges(tip_minor=900))
    assert e.value.code == "not_editable"


@in_memory
def test_a_business_cancel_before_pickup_charges_nothing_and_after_pickup_is_refused(platform):
    svc = platform.services
    view = drive.create_delivery(svc, a_request(platform))
    done = drive.cancel_delivery(svc, view.delivery.merchant_id, "ext-1", reason="customer left")
    assert done.order.status.value == "cancelled"
    assert done.order.cancellation.consumer_charge.amount_minor == 0
    other = drive.create_delivery(svc, a_request(platform, external_delivery_id="ext-2"))
    to_dropoff(platform, other.order.id, stop="picked_up")
    with pytest.raises(Conflict):
        drive.cancel_delivery(svc, other.delivery.merchant_id, "ext-2", reason="too late")


@in_memory
def test_delivery_is_refused_without_the_required_proofs(platform):
    svc = platform.services
    req = a_request(platform, proof=ProofRequirement(photo=True, signature=True, pin=True))
    view = drive.create_delivery(svc, req)
    pin = view.order.dropoff_pin
    courier = to_dropoff(platform, view.order.id)
    with pytest.raises(InvalidInput) as e:
        drive.courier_deliver(svc, view.order.id, given=GivenProof(photo_ref="p.jpg"),
                              actor=courier)
    assert e.value.code == "proof_missing"
    done = drive.courier_deliver(svc, view.order.id, actor=courier, given=GivenProof(
        photo_ref="p.jpg", signature_ref="sig.png", pin=pin))
    assert done.order.status.value == "delivered"
    assert done.delivery.signature_ref == "sig.png"


@in_memory
def test_marketplace_deliver_cannot_bypass_drive_proof_rules(platform):
    from lastmile.app import fulfilment
    from lastmile.core.orders import DeliveryProof

    svc = platform.services
    view = drive.create_delivery(svc, a_request(platform, proof=ProofRequirement(photo=True,
                                                                                 signature=True)))
    courier = to_dropoff(platform, view.order.id)
    with pytest.raises(Conflict) as e:
        fulfilment.deliver(svc, view.order.id, proof=DeliveryProof(note="door"), actor=courier)
    assert e.value.code == "drive_delivery"


@in_memory
@pytest.mark.parametrize("action, status, outcome", [
    (Undeliverable.DISPOSE, "cancelled", "disposed"),
    (Undeliverable.RETURN_TO_PICKUP, "cancelled", "returned_to_pickup"),
    (Undeliverable.LEAVE_AT_DOOR, "delivered", "left_at_door"),
])
def test_an_undeliverable_parcel_follows_the_business_choice(platform, action, status, outcome):
    svc = platform.services
    view = drive.create_delivery(svc, a_request(platform, undeliverable_action=action))
    courier = to_dropoff(platform, view.order.id)
    done = drive.courier_undeliverable(svc, view.order.id, reason="nobody home",
                                       photo_ref="door.jpg", actor=courier)
    assert (done.order.status.value, done.delivery.outcome) == (status, outcome)


@in_memory
def test_listing_pages_newest_first_without_repeats(platform):
    svc = platform.services
    for i in range(5):
        drive.create_delivery(svc, a_request(platform, external_delivery_id=f"e{i}"))
        platform.clock.advance(1)
    m = platform.seed.merchant_ids[0]
    first = drive.list_deliveries(svc, m, limit=3)
    last = first[-1].delivery
    rest = drive.list_deliveries(svc, m, limit=3, after=(last.created_at, last.id))
    ids = [v.delivery.external_delivery_id for v in first + rest]
    assert ids == ["e4", "e3", "e2", "e1", "e0"]


@in_memory
def test_another_business_cannot_see_a_delivery(platform):
    drive.create_delivery(platform.services, a_request(platform))
    with pytest.raises(NotFound):
        drive.get_delivery(platform.services, platform.seed.merchant_ids[1], "ext-1")


def test_status_changes_queue_one_webhook_per_event_even_when_redelivered(platform):
    svc = platform.services
    m = platform.seed.merchant_ids[0]
    webhooks.register_endpoint(svc, m, url="https://hooks.example.test/hook")
    view = drive.create_delivery(svc, a_request(platform))
    pump(platform)
    with svc.uow() as uow:
        events = uow.events.for_subject(view.order.id)
    for e in events:  # a redelivery by the at-least-once relay changes nothing
        webhooks.on_event(svc, e)
    types = [msg.event_type for msg in webhooks.list_messages(svc, m)]
    assert sorted(types) == ["delivery.confirmed", "delivery.created"]


def test_thresholds_fire_once_per_endpoint_and_delay_once_per_delivery(platform):
    from lastmile.core.delivery.thresholds import CourierFix

    svc = platform.services
    m = platform.seed.merchant_ids[0]
    webhooks.register_endpoint(svc, m, url="https://hooks.example.test/hook", nearby_m=400)
    view = drive.create_delivery(svc, a_request(platform))
    to_dropoff(platform, view.order.id, stop="picked_up")
    near = Point(lat=37.4420, lng=-122.14)  # ~220 m north of the drop-off
    positions = lambda courier_id, now: CourierFix(point=near, at=now)  # noqa: E731
    assert webhooks.evaluate_thresholds_once(svc, positions) == 2
    assert webhooks.evaluate_thresholds_once(svc, positions) == 0
    platform.clock.advance(4 * 3600)
    assert webhooks.evaluate_thresholds_once(svc, positions) == 1  # the delay event
    assert webhooks.evaluate_thresholds_once(svc, positions) == 0
    pump(platform)
    types = {msg.event_type for msg in webhooks.list_messages(svc, m)}
    assert {"delivery.eta_under", "delivery.courier_nearby", "delivery.delayed"} <= types


def test_order_events_queue_notifications_once_per_recipient_and_channel(platform):
    svc = platform.services
    drive.create_delivery(svc, a_request(platform))
    pump(platform)
    pump(platform)  # nothing new: the relay already delivered every event
    with svc.uow() as uow:
        queued = uow.notifications.list()
    assert {(n.kind.value, n.recipient_kind, n.channel) for n in queued} == {
        ("order_confirmed", "consumer", "log"), ("order_confirmed", "consumer", "email")}
    assert [n.address for n in queued if n.channel == "email"] == ["ada@example.test"]


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    def send(self, n) -> None:  # type: ignore[no-untyped-def]
        if self.failures > 0:
            self.failures -= 1
            raise OSError("channel down")
        self.sent.append(n.id)


def test_a_failing_channel_loses_nothing_and_is_retried_later(platform):
    svc = platform.services
    drive.create_delivery(svc, a_request(platform, contact=replace(
        a_request(platform).contact, email="")))
    pump(platform)
    log = Flaky(failures=1)
    assert notifications.send_notifications_once(svc, {"log": log}) == 0
    with svc.uow() as uow:
        [n] = uow.notifications.list()
    assert (n.status.value, n.attempts, n.last_error) == ("pending", 1, "OSError: channel down")
    assert notifications.send_notifications_once(svc, {"log": log}) == 0  # not due yet
    platform.clock.advance(31)
    assert notifications.send_notifications_once(svc, {"log": log}) == 1
    assert log.sent == [n.id]


def test_a_channel_failing_every_time_ends_failed_and_can_be_requeued(platform):
    svc = platform.services
    policy = notifications.NotificationPolicy(max_attempts=2, retry_base_s=1)
    drive.create_delivery(svc, a_request(platform, contact=replace(
        a_request(platform).contact, email="")))
    pump(platform)
    for _ in range(2):
        notifications.send_notifications_once(svc, {}, policy=policy)
        platform.clock.advance(5)
    with svc.uow() as uow:
        assert [n.status.value for n in uow.notifications.list()] == ["failed"]
    assert notifications.retry_failed(svc) == 1


@in_memory
def test_courier_actor_helper_is_the_assigned_courier(platform):
    view = drive.create_delivery(platform.services, a_request(platform))
    assert to_dropoff(platform, view.order.id, stop="assigned") == courier_actor(platform)


def test_two_concurrent_creates_with_one_external_id_make_one_delivery_and_both_see_it(
        platform, monkeypatch):
    import threading

    svc = platform.services
    both_checked = threading.Barrier(2, timeout=2)
    real_replay = drive._replay

    def replay_then_race(uow, req):  # type: ignore[no-untyped-def]
        seen = real_replay(uow, req)
        if seen is None:  # hold both requests past the replay check (PostgreSQL lets them)
            try:
                both_checked.wait()
            except threading.BrokenBarrierError:
                pass  # SQLite's write lock serialises them: the second one replays
        return seen

    monkeypatch.setattr(drive, "_replay", replay_then_race)
    results: list[object] = []

    def create() -> None:
        try:
            results.append(drive.create_delivery(svc, a_request(platform)))
        except Exception as exc:  # recorded for the assertion below
            results.append(exc)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(isinstance(r, drive.DeliveryView) for r in results), results
    views = [r for r in results if isinstance(r, drive.DeliveryView)]
    assert len({v.order.id for v in views}) == 1 and sorted(v.replayed for v in views) == [
        False, True]
    m = platform.seed.merchant_ids[0]
    with svc.uow() as uow:  # the loser's order was rolled back with its delivery
        drive_orders = [o for o in uow.orders.list(merchant_id=m)
                        if o.consumer_id.startswith("drive_")]
    assert [o.id for o in drive_orders] == [views[0].order.id]


@in_memory
def test_thresholds_reach_every_in_flight_delivery_not_only_the_oldest_batch(platform):
    from lastmile.core.delivery.thresholds import CourierFix

    svc = platform.services
    m = platform.seed.merchant_ids[0]
    webhooks.register_endpoint(svc, m, url="https://hooks.example.test/hook", nearby_m=400)
    drive.create_delivery(svc, a_request(platform, external_delivery_id="waiting"))
    platform.clock.advance(1)
    moving = drive.create_delivery(svc, a_request(platform, external_delivery_id="moving"))
    to_dropoff(platform, moving.order.id, stop="picked_up")
    near = Point(lat=37.4420, lng=-122.14)
    positions = lambda courier_id, now: CourierFix(point=near, at=now)  # noqa: E731
    # pages of one: a single tick still reaches the newer delivery behind the older one
    assert webhooks.evaluate_thresholds_once(svc, positions, batch=1) == 2
    assert webhooks.evaluate_thresholds_once(svc, positions, batch=1) == 0  # once each


def test_two_concurrent_quotes_for_one_external_id_both_succeed(platform):
    import threading
    import time

    svc = platform.services
    q1 = drive.quote_delivery(svc, a_request(platform, external_delivery_id="q-race"))
    q2 = replace(q1, external_delivery_id="q-race-2")  # a key nobody holds yet
    errors: list[Exception] = []

    def second() -> None:
        try:
            with svc.uow() as uow:
                uow.drive_quotes.put(replace(q2, expires_at=q2.expires_at + 60))
                uow.commit()
        except Exception as exc:  # recorded for the assertion below
            errors.append(exc)

    with svc.uow() as uow:
        uow.drive_quotes.put(q2)
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)  # PostgreSQL: the second insert now waits on this one's key
        uow.commit()
    t.join(30)
    assert errors == []
    with svc.uow() as uow:
        held = uow.drive_quotes.get(q1.merchant_id, "q-race-2")
    assert held is not None and held.expires_at == q2.expires_at + 60  # the later one wins


@in_memory
def test_tracking_tokens_and_webhook_secrets_do_not_come_from_the_injected_generator(platform):
    import random

    m = platform.seed.merchant_ids[0]
    seeded = [replace(platform.services, rng=random.Random(42)) for _ in range(2)]
    tokens = {drive.create_delivery(s, a_request(platform, external_delivery_id=f"t{i}"))
              .delivery.tracking_token for i, s in enumerate(seeded)}
    secrets = {webhooks.register_endpoint(s, m, url="https://example.test/h").secret
               for s in seeded}
    assert len(tokens) == 2 and len(secrets) == 2  # a seeded simulator cannot predict them


class Recording:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
        self.urls.append(url)
        return 204


def test_a_message_for_a_removed_endpoint_goes_to_the_dead_letter_at_once(platform):
    svc = platform.services
    m = platform.seed.merchant_ids[0]
    ep = webhooks.register_endpoint(svc, m, url="https://example.test/h",
                                    event_types=("delivery.created",))
    drive.create_delivery(svc, a_request(platform))
    pump(platform)
    webhooks.remove_endpoint(svc, m, ep.id)
    transport = Recording()
    assert webhooks.send_webhooks_once(svc, transport) == 1
    [msg] = webhooks.list_messages(svc, m)
    assert (msg.status.value, msg.attempts, transport.urls) == ("dead", 1, [])


# --- a delivery is priced as a delivery ----------------------------------------------------

def test_a_drive_quote_charges_the_delivery_fee_and_tip_whatever_the_goods_are_worth(platform):
    svc = platform.services
    cheap = drive.quote_delivery(svc, a_request(platform, external_delivery_id="a",
                                                order_value_minor=500))
    dear = drive.quote_delivery(svc, a_request(platform, external_delivery_id="b",
                                               order_value_minor=250_000))
    for q in (cheap, dear):
        p = q.prices_minor
        assert (p["subtotal"], p["service_fee"], p["small_order_fee"], p["tax"]) == (0, 0, 0, 0)
        assert p["total"] == q.fee_minor + 300 and q.fee_minor == p["delivery_fee"] > 0
    assert cheap.prices_minor == dear.prices_minor


def test_the_order_for_dispatch_and_its_event_carry_the_quoted_fee_and_tip(platform):
    svc = platform.services
    q = drive.quote_delivery(svc, a_request(platform))
    view = drive.accept_quote(svc, q.merchant_id, "ext-1", tip_minor=450)
    prices = view.order.prices
    assert view.fee.amount_minor == q.fee_minor
    assert prices.total.amount_minor == q.fee_minor + 450
    assert prices.subtotal.amount_minor == prices.service_fee.amount_minor == 0
    with svc.uow(read_only=True) as uow:
        placed = uow.events.for_subject(view.order.id)[0]
    assert placed.data["total_minor"] == q.fee_minor + 450


def test_a_delivery_created_directly_costs_what_its_quote_would(platform):
    svc = platform.services
    q = drive.quote_delivery(svc, a_request(platform, external_delivery_id="quoted"))
    view = drive.create_delivery(svc, a_request(platform))
    assert view.fee.amount_minor == q.fee_minor
    assert view.order.prices.as_minor() == q.prices_minor


def test_webhooks_tell_the_business_the_fee_and_tip_it_pays(platform):
    svc = platform.services
    m = platform.seed.merchant_ids[0]
    webhooks.register_endpoint(svc, m, url="https://hooks.example.test/hook")
    view = drive.create_delivery(svc, a_request(platform))
    pump(platform)
    for msg in webhooks.list_messages(svc, m):
        data = msg.payload["data"]
        assert (data["fee_minor"], data["tip_minor"], data["currency"]) == (
            view.fee.amount_minor, 300, view.order.currency)
