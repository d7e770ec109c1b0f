"""The testkit (app.testkit): test parties in test tenants only, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from lastmile.adapters.bus.outbox import relay_once
from lastmile.app import fulfilment, offers, testkit
from lastmile.app.auth import authenticate
from lastmile.app.tenancy import acting_as
from lastmile.app.tenants import configure, ensure_tenant
from lastmile.bootstrap import install_testkit
from lastmile.core.errors import Forbidden, InvalidInput
from lastmile.core.model import CourierStatus
from lastmile.core.offers import OfferStatus
from lastmile.core.orders import SYSTEM, Actor, ActorKind, OrderStatus
from lastmile.core.tenancy import DEFAULT_TENANT

SANDBOX = "doortest:sandbox"
MERCHANT_AT = {"lat": 37.45, "lng": -122.15}


@pytest.fixture
def sandbox(platform):  # type: ignore[no-untyped-def]
    ensure_tenant(platform.services, SANDBOX)
    with acting_as(SANDBOX):
        yield platform


def _journey(svc, *, auto_accept: bool = False):  # type: ignore[no-untyped-def]
    merchant = testkit.create_merchant(svc, template="sushi", **MERCHANT_AT).party
    consumer = testkit.create_consumer(svc, lat=37.44, lng=-122.14).party
    courier = testkit.create_courier(svc, auto_accept=auto_accept, **MERCHANT_AT).party
    return merchant, consumer, courier


def test_every_testkit_function_refuses_a_live_tenant(platform):
    svc = platform.services
    calls = [
        lambda: testkit.create_consumer(svc), lambda: testkit.create_merchant(svc),
        lambda: testkit.create_courier(svc), lambda: testkit.region(svc),
        lambda: testkit.place_order(svc, consumer_id=platform.seed.consumer_ids[0],
                                    merchant_id=platform.seed.merchant_ids[0]),
        lambda: testkit.set_auto_accept(svc, platform.seed.courier_ids[0], True),
        lambda: testkit.reset(svc, platform.container.live),
    ]
    with acting_as(DEFAULT_TENANT):
        for call in calls:
            with pytest.raises(Forbidden) as refused:
                call()
            assert refused.value.code == "not_a_test_tenant"
    with platform.services.uow(read_only=True) as uow:  # nothing was made in the live one
        assert len(uow.merchants.list_region(platform.seed.region.id)) == 6
        assert all(c.status is CourierStatus.OFFLINE
                   for c in uow.couriers.list_region(platform.seed.region.id))


def test_parties_are_made_in_the_test_tenant_with_a_region_of_its_own(sandbox):
    svc = sandbox.services
    merchant, consumer, courier = _journey(svc)
    assert merchant.region_id == testkit.test_region_id(SANDBOX) == "reg_test_doortest_sandbox"
    assert [i.name for i in merchant.menu] == ["Salmon roll", "Tuna nigiri", "Miso soup"]
    assert consumer.addresses[0].location.lat == 37.44
    assert courier.on_shift and courier.device_id == f"testkit-{courier.id}"
    assert courier.location is not None and courier.location.lat == MERCHANT_AT["lat"]
    stray = testkit.create_consumer(svc).party  # a random point of the region
    region = testkit.region(svc)
    assert region.polygon.contains(stray.addresses[0].location)
    with acting_as(DEFAULT_TENANT), svc.uow(read_only=True) as uow:  # invisible elsewhere
        assert uow.merchants.get(merchant.id) is None
        assert uow.couriers.get(courier.id) is None


def test_a_test_order_is_quoted_and_placed_for_the_consumer(sandbox):
    svc = sandbox.services
    merchant, consumer, _ = _journey(svc)
    placed = testkit.place_order(svc, consumer_id=consumer.id, merchant_id=merchant.id,
                                 require_pin=True, idempotency_key="k1")
    assert placed.order.status is OrderStatus.PLACED and placed.order.dropoff_pin
    assert placed.order.prices.total.amount_minor == placed.quote.prices.total.amount_minor
    assert [li.item_id for li in placed.order.lines] == [merchant.menu[0].id]
    again = testkit.place_order(svc, consumer_id=consumer.id, merchant_id=merchant.id,
                                require_pin=True, idempotency_key="k1")
    assert again.replayed and again.order.id == placed.order.id


def test_bad_input_names_the_field(sandbox):
    svc = sandbox.services
    with pytest.raises(InvalidInput) as bad:
        testkit.create_merchant(svc, template="ramen")
    assert (bad.value.code, bad.value.field) == ("unknown_template", "template")
    with pytest.raises(InvalidInput) as bad:
        testkit.create_consumer(svc, lat=37.44)
    assert (bad.value.code, bad.value.field) == ("incomplete_location", "lng")
    with pytest.raises(InvalidInput) as bad:
        testkit.create_courier(svc, shift_s=60)
    assert bad.value.field == "shift_s"


def test_keys_act_as_the_party_in_the_test_tenant(sandbox):
    svc = sandbox.services
    made = testkit.create_courier(svc, with_key=True, **MERCHANT_AT)
    assert made.api_key is not None
    who = authenticate(svc, made.api_key)
    assert (who.role, who.subject_id, who.tenant) == ("courier", made.party.id, SANDBOX)
    assert testkit.create_consumer(svc).api_key is None


def _offer_one(svc, merchant, consumer, courier):  # type: ignore[no-untyped-def]
    order = testkit.place_order(svc, consumer_id=consumer.id, merchant_id=merchant.id).order
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=300,
                             actor=Actor(kind=ActorKind.MERCHANT, id=merchant.id))
    return offers.make_offer(svc, courier_id=courier.id, order_ids=(order.id,), actor=SYSTEM)


def test_an_auto_accepting_courier_accepts_its_offers_through_the_bus(sandbox):
    svc = sandbox.services
    install_testkit(sandbox.container)
    merchant, consumer, courier = _journey(svc, auto_accept=True)
    offer = _offer_one(svc, merchant, consumer, courier)
    while relay_once(svc, sandbox.container.bus) > 0:
        pass
    with svc.uow(read_only=True) as uow:
        assert uow.offers.get(offer.id).status is OfferStatus.ACCEPTED
    # A courier without the flag (or with it turned off) decides by itself.
    other = testkit.create_courier(svc, auto_accept=True, **MERCHANT_AT).party
    testkit.set_auto_accept(svc, other.id, False)
    waiting = _offer_one(svc, merchant, consumer, other)
    while relay_once(svc, sandbox.container.bus) > 0:
        pass
    with svc.uow(read_only=True) as uow:
        assert uow.offers.get(waiting.id).status is OfferStatus.PENDING


def test_a_live_tenant_flagged_in_its_config_is_never_auto_accepted(platform):
    svc = platform.services
    install_testkit(platform.container)
    courier_id = platform.seed.courier_ids[0]
    with acting_as(DEFAULT_TENANT):
        configure(svc, {"testkit": {"auto_accept": [courier_id]}}, tenant_id=DEFAULT_TENANT)
        courier = Actor(kind=ActorKind.COURIER, id=courier_id)
        fulfilment.start_shift(svc, courier_id, device_id="d1",
                               ends_at=svc.clock.now() + 3600, actor=courier)
        order = _live_order(platform)
        offer = offers.make_offer(svc, courier_id=courier_id, order_ids=(order,), actor=SYSTEM)
        while relay_once(svc, platform.container.bus) > 0:
            pass
        with svc.uow(read_only=True) as uow:
            assert uow.offers.get(offer.id).status is OfferStatus.PENDING


def _live_order(platform) -> str:  # type: ignore[no-untyped-def]
    from lastmile.app import ordering

    svc, seed = platform.services, platform.seed
    with svc.uow(read_only=True) as uow:
        merchant = uow.merchants.get(seed.merchant_ids[0])
    req = ordering.OrderRequest(
        consumer_id=seed.consumer_ids[0], merchant_id=merchant.id,
        lines=(ordering.LineRequest(item_id=merchant.menu[0].id, quantity=1),),
        dropoff=merchant.location)
    order = ordering.place_order(svc, req, idempotency_key="live-1").order
    fulfilment.confirm_order(svc, order.id, prep_estimate_s=300,
                             actor=Actor(kind=ActorKind.MERCHANT, id=merchant.id))
    return order.id


def test_reset_cancels_waiting_orders_and_ends_idle_shifts(sandbox):
    svc = sandbox.services
    merchant, consumer, courier = _journey(svc)
    order = testkit.place_order(svc, consumer_id=consumer.id, merchant_id=merchant.id).order
    done = testkit.reset(svc, sandbox.container.live)
    assert done.cancelled_order_ids == (order.id,)
    assert done.ended_courier_ids == (courier.id,)
    with svc.uow(read_only=True) as uow:
        assert uow.orders.get(order.id).status is OrderStatus.CANCELLED
        assert not uow.couriers.get(courier.id).on_shift
    assert testkit.reset(svc, sandbox.container.live) == testkit.Reset(
        cancelled_order_ids=(), ended_courier_ids=())
