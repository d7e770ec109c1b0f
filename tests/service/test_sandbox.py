"""Guardrails of the test tenants (issue 9, item 3): each test tries to cross one.

The ``platform`` fixture's default tenant is live; ``tenant_helpers`` seeds a test tenant
(``doortest:probe``) beside it. Runs on SQLite and, marked, PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from drive_helpers import a_request, pump

from fakes import in_memory
from lastmile.adapters.webhooks.http import HttpTransport
from lastmile.app import drive, notifications, sandbox, webhooks
from lastmile.app.ordering import place_order
from lastmile.app.tenancy import acting_as
from lastmile.app.tenants import ensure_tenant
from lastmile.core.errors import Forbidden, InvalidInput, NotFound
from lastmile.core.sandbox import OutboundMode
from lastmile.core.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from lastmile.sim.seed import tenant_region_id
from tenant_helpers import TEST_TENANT, an_order_request, receiver, seed_test_tenant


def _loopback(platform):  # type: ignore[no-untyped-def]
    """The platform's services allowed to register a loopback webhook URL (the receiver)."""
    return replace(platform.services, webhooks_allow_private=True)


def _drive_delivery_with_endpoint(platform, merchant_id: str, url: str, ext: str):  # type: ignore[no-untyped-def]
    endpoint = webhooks.register_endpoint(_loopback(platform), merchant_id, url=url,
                                          event_types=("delivery.created",))
    view = drive.create_delivery(platform.services, a_request(
        platform, merchant_id=merchant_id, external_delivery_id=ext))
    return endpoint, view


# --- outbound side effects --------------------------------------------------------------

def test_a_test_tenants_webhook_is_captured_signed_and_never_posted(platform):
    test_world = seed_test_tenant(platform)
    svc = platform.services
    transport = HttpTransport(allow_private_networks=True)
    with receiver() as hook:
        with acting_as(TEST_TENANT):
            endpoint, view = _drive_delivery_with_endpoint(
                platform, test_world.merchant_ids[0], hook.url, "probe-1")
        pump(platform)
        with acting_as(TEST_TENANT):
            assert webhooks.send_webhooks_once(svc, transport) == 1
            [msg] = webhooks.list_messages(svc, test_world.merchant_ids[0])
            [cap] = sandbox.list_captures(svc, channel="webhook", subject_id=view.order.id)
        assert hook.requests == []  # nothing reached the receiver
    assert (msg.status.value, msg.attempts, msg.last_error) == ("delivered", 1, None)
    assert (cap.channel.value, cap.target, cap.event_type) == (
        "webhook", hook.url, "delivery.created")
    assert cap.headers[EVENT_ID_HEADER] == msg.event_id
    assert verify(endpoint.secret, cap.headers[SIGNATURE_HEADER], cap.body.encode(),
                  now=svc.clock.now())
    assert json.loads(cap.body)["data"]["delivery_id"] == view.delivery.id


def test_a_live_tenants_webhook_still_goes_out_and_is_not_captured(platform):
    seed_test_tenant(platform)
    svc = platform.services
    with receiver() as hook:
        _, view = _drive_delivery_with_endpoint(platform, platform.seed.merchant_ids[0],
                                                hook.url, "live-1")
        pump(platform)
        assert webhooks.send_webhooks_once(svc, HttpTransport(allow_private_networks=True)) == 1
    [(path, headers, body)] = hook.requests
    assert path == "/hook" and json.loads(body)["data"]["order_id"] == view.order.id
    assert sandbox.list_captures(svc) == []
    with acting_as(TEST_TENANT):  # nor did it land in the test tenant's captures
        assert sandbox.list_captures(svc) == []


def test_a_test_tenants_notices_are_captured_and_marked_sent_without_a_channel_send(platform):
    test_world = seed_test_tenant(platform)
    svc = platform.services
    sent: list[str] = []

    class Recording:
        def send(self, n) -> None:  # type: ignore[no-untyped-def]
            sent.append(n.id)

    channels = {"log": Recording(), "email": Recording()}
    with acting_as(TEST_TENANT):
        drive.create_delivery(svc, a_request(platform, merchant_id=test_world.merchant_ids[0]))
    pump(platform)
    with acting_as(TEST_TENANT):
        assert notifications.send_notifications_once(svc, channels) == 2
        with svc.uow() as uow:
            statuses = {n.status.value for n in uow.notifications.list()}
        captured = sandbox.list_captures(svc, channel="notification")
    assert sent == [] and statuses == {"sent"}
    email, log = sorted(captured, key=lambda c: c.target)
    assert email.target == "email:ada@example.test"
    assert log.target.startswith("log:consumer/") and log.event_type == "order_confirmed"
    assert {json.loads(c.body)["subject"] for c in captured} != {""}


def test_a_live_tenants_notices_still_reach_their_channel(platform):
    svc = platform.services
    sent: list[str] = []

    class Recording:
        def send(self, n) -> None:  # type: ignore[no-untyped-def]
            sent.append(n.id)

    drive.create_delivery(svc, a_request(platform))
    pump(platform)
    assert notifications.send_notifications_once(svc, {"log": Recording(),
                                                       "email": Recording()}) == 2
    assert len(sent) == 2 and sandbox.list_captures(svc) == []


def test_money_of_a_test_tenant_never_reaches_a_real_processor(platform):
    svc = platform.services
    ensure_tenant(svc, TEST_TENANT)
    assert sandbox.payment_mode(svc) is OutboundMode.LIVE
    sandbox.require_live_money(svc, what="charge of order ord_1")  # live: allowed
    with acting_as(TEST_TENANT):
        assert sandbox.payment_mode(svc) is OutboundMode.SANDBOX
        with pytest.raises(Forbidden) as refused:
            sandbox.require_live_money(svc, what="charge of order ord_1")
    assert refused.value.code == "sandbox_payment_refused"
    assert TEST_TENANT in refused.value.message and "ord_1" in refused.value.message


def test_a_live_tenant_marked_test_by_config_is_sandboxed_too(platform):
    """The rule reads the tenant's kind, not its name: ``acme:eu`` created as test."""
    from lastmile.app.tenants import create_tenant
    from lastmile.core.tenancy import TenantKind

    svc = platform.services
    create_tenant(svc, "acme:staging", kind=TenantKind.TEST)
    create_tenant(svc, "doortest:real", kind=TenantKind.LIVE)
    with acting_as("acme:staging"):
        assert sandbox.outbound_mode(svc) is OutboundMode.SANDBOX
    with acting_as("doortest:real"):
        assert sandbox.outbound_mode(svc) is OutboundMode.LIVE


def test_listing_captures_checks_channel_and_limit(platform):
    svc = platform.services
    with pytest.raises(InvalidInput) as bad:
        sandbox.list_captures(svc, channel="sms-gateway")
    assert bad.value.field == "channel"
    with pytest.raises(InvalidInput):
        sandbox.list_captures(svc, limit=0)


# --- parties of two worlds never meet ------------------------------------------------------

def test_a_test_consumer_cannot_order_from_a_live_merchant(platform):
    test_world = seed_test_tenant(platform)
    live_merchant = platform.seed.merchant_ids[0]
    req = an_order_request(platform, consumer_id=test_world.consumer_ids[0],
                           merchant_id=live_merchant, merchant_tenant="lastmile:default")
    with acting_as(TEST_TENANT), pytest.raises(NotFound) as err:
        place_order(platform.services, req, idempotency_key="cross-1")
    assert err.value.code == "merchant_not_found"


def test_a_live_consumer_cannot_order_from_a_test_merchant(platform):
    test_world = seed_test_tenant(platform)
    req = an_order_request(platform, consumer_id=platform.seed.consumer_ids[0],
                           merchant_id=test_world.merchant_ids[0], merchant_tenant=TEST_TENANT)
    with pytest.raises(NotFound) as err:
        place_order(platform.services, req, idempotency_key="cross-2")
    assert err.value.code == "merchant_not_found"


def test_a_test_order_is_never_offered_to_a_live_courier_nor_the_reverse(platform):
    from lastmile.app import fulfilment, offers
    from lastmile.core.orders import SYSTEM, Actor, ActorKind

    svc = platform.services
    test_world = seed_test_tenant(platform)
    with acting_as(TEST_TENANT):
        test_order = place_order(svc, an_order_request(
            platform, consumer_id=test_world.consumer_ids[0],
            merchant_id=test_world.merchant_ids[0]), idempotency_key="t-1").order
    live_order = place_order(svc, an_order_request(
        platform, consumer_id=platform.seed.consumer_ids[0],
        merchant_id=platform.seed.merchant_ids[0]), idempotency_key="l-1").order
    live_courier = platform.seed.courier_ids[0]
    fulfilment.start_shift(svc, live_courier, device_id="d1", ends_at=svc.clock.now() + 3600,
                           actor=Actor(kind=ActorKind.COURIER, id=live_courier))
    with pytest.raises(NotFound):  # the live courier's world has no such order
        offers.make_offer(svc, courier_id=live_courier, order_ids=(test_order.id,),
                          actor=SYSTEM)
    with acting_as(TEST_TENANT), pytest.raises(NotFound):  # nor the test world this courier
        offers.make_offer(svc, courier_id=live_courier, order_ids=(live_order.id,),
                          actor=SYSTEM)
    assert test_order.region_id == tenant_region_id(TEST_TENANT) != live_order.region_id


@in_memory
def test_ordering_refuses_a_consumer_and_merchant_of_two_tenants_without_storage_help(platform):
    """The fake unit of work does not scope by tenant: only the use case's wall stands."""
    svc = platform.services
    with svc.uow() as uow:
        consumer = uow.consumers.get(platform.seed.consumer_ids[0])
        uow.consumers.add(replace(consumer, id="con_probe", tenant=TEST_TENANT))
        uow.commit()
    req = an_order_request(platform, consumer_id="con_probe",
                           merchant_id=platform.seed.merchant_ids[0])
    with pytest.raises(Forbidden) as err:
        place_order(svc, req, idempotency_key="cross-3")
    assert err.value.code == "cross_tenant"
    assert "con_probe (doortest:probe)" in err.value.message


def test_loaded_consumers_and_merchants_carry_their_rows_tenant(platform):
    from lastmile.app import queries

    test_world = seed_test_tenant(platform)
    svc = platform.services
    assert queries.get_merchant(svc, platform.seed.merchant_ids[0]).tenant == "lastmile:default"
    with acting_as(TEST_TENANT), svc.uow(read_only=True) as uow:
        consumer = uow.consumers.get(test_world.consumer_ids[0])
        merchant = uow.merchants.get(test_world.merchant_ids[0])
    assert consumer is not None and merchant is not None
    assert (consumer.tenant, merchant.tenant) == (TEST_TENANT, TEST_TENANT)


def test_dispatch_rounds_never_mix_test_and_live_orders_and_couriers(platform):
    from lastmile.app import fulfilment
    from lastmile.app.dispatching import dispatch_round
    from lastmile.app.live import CourierLive
    from lastmile.core.dispatch import DispatchPolicy, PolicyKind
    from lastmile.core.orders import SYSTEM, Actor, ActorKind
    from lastmile.sim.seed import DEMO_REGION_ID

    svc, live = platform.services, platform.container.live
    greedy = DispatchPolicy(kind=PolicyKind.GREEDY)
    test_world = seed_test_tenant(platform)
    test_region = tenant_region_id(TEST_TENANT)

    def ready_order(world, key: str) -> str:  # type: ignore[no-untyped-def]
        m = world.merchant_ids[0]
        order = place_order(svc, an_order_request(platform, consumer_id=world.consumer_ids[0],
                                                  merchant_id=m), idempotency_key=key).order
        fulfilment.confirm_order(svc, order.id, prep_estimate_s=600,
                                 actor=Actor(kind=ActorKind.MERCHANT, id=m))
        return order.id

    def on_shift(world, region: str) -> str:  # type: ignore[no-untyped-def]
        cid = world.courier_ids[0]
        fulfilment.start_shift(svc, cid, device_id="d0", ends_at=svc.clock.now() + 3600,
                               actor=SYSTEM)
        live.upsert(CourierLive(courier_id=cid, region_id=region, lat=37.445, lng=-122.15,
                                status="idle", updated_at=svc.clock.now()))
        return cid

    with acting_as(TEST_TENANT):
        test_order, test_courier = ready_order(test_world, "t-9"), on_shift(test_world,
                                                                            test_region)
    live_order, live_courier = ready_order(platform.seed, "l-9"), on_shift(platform.seed,
                                                                            DEMO_REGION_ID)
    with acting_as(TEST_TENANT):
        test_round = dispatch_round(svc, live, test_region, greedy)
    live_round = dispatch_round(svc, live, DEMO_REGION_ID, greedy)
    assert [(o.courier_id, o.order_ids) for o in test_round.offers] == [
        (test_courier, (test_order,))]
    assert [(o.courier_id, o.order_ids) for o in live_round.offers] == [
        (live_courier, (live_order,))]
    with pytest.raises(NotFound):  # the live world has no test region to dispatch
        dispatch_round(svc, live, test_region, greedy)
