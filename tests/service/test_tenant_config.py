"""Per-tenant configuration applied by the use cases, on SQLite and PostgreSQL: fees in
quotes and orders, dispatch knobs in rounds, phone rules for consumers, the currency of
regions, and changes that lose a race."""

from dataclasses import replace

import pytest
from drive_helpers import a_request

from lastmile.app import catalog, tenants
from lastmile.app.dispatching import dispatch_round
from lastmile.app.drive import quote_delivery
from lastmile.app.live import CourierLive
from lastmile.app.ordering import get_quote, place_order
from lastmile.app.tenancy import acting_as
from lastmile.core.dispatch import DispatchPolicy, PolicyKind
from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.geo import Point
from lastmile.core.ids import ConsumerId, RegionId
from lastmile.core.model import Consumer
from tenant_worlds import World, basket, confirmed_order, courier_on_shift, tenant_world

CHEAP = {"fees": {"base_delivery_fee_minor": 0, "per_km_minor": 0, "service_fee_bp": 0,
                  "service_fee_min_minor": 0, "small_order_fee_minor": 0}}
DEAR = {"fees": {"base_delivery_fee_minor": 500, "service_fee_min_minor": 300}}
SQUARE = (Point(lat=37.40, lng=-122.20), Point(lat=37.40, lng=-122.10),
          Point(lat=37.48, lng=-122.10), Point(lat=37.48, lng=-122.20))


def test_two_tenants_quoting_the_same_basket_get_their_own_fees(platform):
    s = platform.services
    cheap = tenant_world(s, "cheap:eats", CHEAP)
    dear = tenant_world(s, "dear:eats", DEAR)
    with acting_as(cheap.tenant):
        low = get_quote(s, basket(s, cheap))
    with acting_as(dear.tenant):
        high = get_quote(s, basket(s, dear))
    assert low.prices.subtotal == high.prices.subtotal  # the same basket, the same menu
    assert low.distance_m == high.distance_m
    assert (low.prices.delivery_fee.amount_minor, low.prices.service_fee.amount_minor) == (0, 0)
    assert high.prices.delivery_fee.amount_minor >= 500
    assert high.prices.service_fee.amount_minor >= 300
    # The default tenant keeps the deployment's policy.
    default = get_quote(s, basket_in_default(platform))
    assert 0 < default.prices.delivery_fee.amount_minor < high.prices.delivery_fee.amount_minor


def test_an_order_is_charged_its_tenants_fees_and_a_change_applies_at_once(platform):
    s = platform.services
    world = tenant_world(s, "acme:eats", DEAR)
    with acting_as(world.tenant):
        before = get_quote(s, basket(s, world))
        tenants.configure(s, {"fees": {"base_delivery_fee_minor": 900}})
        after = get_quote(s, basket(s, world))
        order = place_order(s, basket(s, world), idempotency_key="a").order
    assert after.surge_multiplier == before.surge_multiplier == 1  # no open order yet
    fee = after.prices.delivery_fee.amount_minor
    assert fee - before.prices.delivery_fee.amount_minor == 400
    assert order.prices.delivery_fee.amount_minor == fee
    assert order.prices.service_fee.amount_minor >= 300


def test_drive_deliveries_are_priced_with_the_tenants_fees(platform):
    s = platform.services
    cheap = tenant_world(s, "cheap:eats", CHEAP)
    dear = tenant_world(s, "dear:eats", DEAR)
    fees = {}
    for world in (cheap, dear):
        with acting_as(world.tenant):
            req = replace(a_request(platform), merchant_id=world.seed.merchant_ids[0])
            fees[world.tenant] = quote_delivery(s, req).fee_minor
    assert fees["cheap:eats"] == 0 and fees["dear:eats"] >= 500


def basket_in_default(platform):
    return basket(platform.services, World(tenant="lastmile:default", seed=platform.seed))


def test_a_tenants_dispatch_knobs_apply_to_its_rounds(platform):
    """The deployment dispatches greedily; one tenant chose the optimised policy, which
    does not commit a courier while the food is far from ready."""
    s = platform.services
    patient = tenant_world(s, "patient:eats", {"dispatch": {"kind": "optimised",
                                                            "horizon_s": 1800}})
    eager = tenant_world(s, "eager:eats")
    now = platform.clock.now()
    for world in (patient, eager):
        order = confirmed_order(s, world)  # ready in 10 minutes
        cid = courier_on_shift(s, world, ends_at=now + 4 * 3600)
        platform.container.live.upsert(CourierLive(
            courier_id=cid, region_id=world.region_id, lat=order.pickup.lat,
            lng=order.pickup.lng, status="idle", updated_at=now))
    base = DispatchPolicy(kind=PolicyKind.GREEDY)
    with acting_as(patient.tenant):
        policy = tenants.dispatch_policy(s, base)
        waiting = dispatch_round(s, platform.container.live, patient.region_id, base)
    with acting_as(eager.tenant):
        assert tenants.dispatch_policy(s, base) == base
        offered = dispatch_round(s, platform.container.live, eager.region_id, base)
    assert (policy.kind, policy.horizon_s) == (PolicyKind.OPTIMISED, 1800)
    assert waiting.offers == () and waiting.open_orders == 1
    assert len(offered.offers) == 1


def test_phone_rules_differ_per_tenant(platform):
    s = platform.services
    prod = tenant_world(s, "acme:eats", {"parties": {"phone_required": True}})
    test = tenant_world(s, "acme:sandbox")
    with acting_as(prod.tenant):
        with pytest.raises(InvalidInput) as err:
            catalog.create_consumer(s, region_id=prod.region_id, name="No Phone")
        assert (err.value.code, err.value.field) == ("phone_required", "phone")
        ada = catalog.create_consumer(s, region_id=prod.region_id, name="Ada",
                                      phone="+1 (650) 555-0199")
        assert ada.phone == "+16505550199"
        with pytest.raises(Conflict) as taken:
            catalog.create_consumer(s, region_id=prod.region_id, name="Bob",
                                    phone="+1 650 555 0199")
        assert (taken.value.code, taken.value.field) == ("phone_taken", "phone")
    with acting_as(test.tenant):
        anon = catalog.create_consumer(s, region_id=test.region_id, name="Anon")
        twin = catalog.create_consumer(s, region_id=test.region_id, name="Ada's twin",
                                       phone="+16505550199")  # unique per tenant only
    assert anon.phone is None and twin.phone == ada.phone
    with acting_as(test.tenant), s.uow(read_only=True) as uow:
        assert uow.consumers.get(twin.id).phone == "+16505550199"


def test_the_database_keeps_a_phone_unique_within_a_tenant_when_the_check_is_raced(platform):
    """Two creates that both passed the check: the unique index on (tenant, phone) refuses
    the second, and only within the tenant."""
    s = platform.services
    world = tenant_world(s, "acme:eats")

    def add(consumer_id, region_id):
        with s.uow() as uow:
            uow.consumers.add(Consumer(id=ConsumerId(consumer_id), region_id=RegionId(region_id),
                                       name="X", phone="+15550000001"))
            uow.commit()

    with acting_as(world.tenant):
        add("con_race_1", world.region_id)
        with pytest.raises(Conflict):
            add("con_race_2", world.region_id)
    add("con_race_3", platform.seed.region.id)  # the default tenant: its own phones


def test_regions_take_the_tenants_currency_and_refuse_another(platform):
    s = platform.services
    tenants.create_tenant(s, "euro:eats", config={"currency": "EUR"})
    with acting_as("euro:eats"):
        region = catalog.create_region(s, region_id="reg_euro", name="E", market="e",
                                       time_zone="Europe/Paris", polygon=SQUARE)
        assert region.currency == "EUR"
        with pytest.raises(InvalidInput) as err:
            catalog.create_region(s, region_id="reg_dollar", name="D", market="d",
                                  time_zone="Europe/Paris", currency="USD", polygon=SQUARE)
        assert (err.value.code, err.value.field) == ("currency_mismatch", "currency")
        with pytest.raises(Conflict) as moved:
            tenants.configure(s, {"currency": "GBP"})
        assert moved.value.code == "currency_in_use" and "reg_euro" in moved.value.message
    with pytest.raises(InvalidInput) as none:  # no tenant currency, none given
        catalog.create_region(s, region_id="reg_x", name="X", market="x",
                              time_zone="Europe/Paris", polygon=SQUARE)
    assert none.value.code == "currency_required"


def test_a_config_change_against_a_stale_version_is_refused(platform):
    s = platform.services
    created = tenants.create_tenant(s, "acme:eats")
    tenants.configure(s, {"fees": {"per_km_minor": 70}}, tenant_id="acme:eats",
                      expected_version=created.version)
    with pytest.raises(Conflict) as err:
        tenants.configure(s, {"fees": {"per_km_minor": 80}}, tenant_id="acme:eats",
                          expected_version=created.version)
    assert err.value.code == "concurrent_update"
    assert tenants.get_tenant(s, "acme:eats").config == {"fees": {"per_km_minor": 70}}


def test_an_invalid_change_leaves_the_config_as_it_was(platform):
    s = platform.services
    tenants.create_tenant(s, "acme:eats", config={"fees": {"per_km_minor": 70}})
    with pytest.raises(InvalidInput) as err:
        tenants.configure(s, {"fees": {"base_delivery_fee_minor": -5}}, tenant_id="acme:eats")
    assert err.value.field == "config.fees.base_delivery_fee_minor"
    saved = tenants.get_tenant(s, "acme:eats")
    assert saved.config == {"fees": {"per_km_minor": 70}} and saved.version == 0
