"""Test parties for end-to-end checks in production: in a TEST tenant only.

Each function here creates what a journey needs through the same use cases the API calls
(catalog, fulfilment, ordering): a consumer with a fake location, a merchant from a menu
template, a courier on shift at a place (optionally accepting its offers by itself), an
order. Every one of them first checks that the current tenant is a test tenant and refuses
a live one with 403 ``not_a_test_tenant``: the testkit must never make synthetic parties
among real customers, couriers and money (seed 003's guardrails).

The CLI (``lastmile testkit``), the ops API (``/v1/testkit/...``) and the tests call these.
"""

from __future__ import annotations

import secrets  # keys are capabilities: never from the injectable, possibly seeded, rng
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from lastmile.app import catalog, fulfilment, ordering
from lastmile.app.auth import issue_api_key
from lastmile.app.context import Services
from lastmile.app.live import CourierLive, LiveStore
from lastmile.app.shifts import end_shift
from lastmile.app.tenancy import current_tenant
from lastmile.app.tenants import configure, get_tenant
from lastmile.core.errors import DomainError, Forbidden, InvalidInput, NotFound
from lastmile.core.geo import Point
from lastmile.core.model import Address, Consumer, Courier, ItemOption, Merchant, Region, Vehicle
from lastmile.core.orders import AWAITING_COURIER, SYSTEM, Actor, ActorKind, Order, OrderStatus
from lastmile.core.pricing import Quote
from lastmile.core.tenancy import Tenant, region_id_in

CONFIG_KEY = "testkit"  # app.tenants.CONFIG_KEYS: {"auto_accept": [courier ids]}
MAX_AUTO_ACCEPT = 500  # the newest ones are kept: a probe every minute for a year stays small
# Palo Alto (the demo city of ``lastmile seed``): a 10 km x 10 km box for a test region.
_CENTER = Point(lat=37.4419, lng=-122.1430)
_HALF_LAT, _HALF_LNG = 0.045, 0.057

# Menu templates: name -> items (name, price in minor units). Options on the first item.
TEMPLATES: dict[str, tuple[tuple[str, int], ...]] = {
    "pizza": (("Margherita", 1299), ("Pepperoni", 1499), ("Garlic knots", 599)),
    "sushi": (("Salmon roll", 899), ("Tuna nigiri", 1099), ("Miso soup", 399)),
    "burgers": (("Cheeseburger", 1099), ("Fries", 399), ("Milkshake", 599)),
    "salads": (("Caesar", 1199), ("Poke bowl", 1549), ("Lemonade", 399)),
}
T = TypeVar("T")
_OPTIONS = (ItemOption(id="extra", name="Extra portion", price_delta_minor=250),)


@dataclass(frozen=True, slots=True, kw_only=True)
class Created(Generic[T]):
    """A created test party and, when asked for, an API key to act as it (shown once)."""

    party: T
    api_key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TestOrder:
    quote: Quote
    order: Order
    replayed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Reset:
    cancelled_order_ids: tuple[str, ...]
    ended_courier_ids: tuple[str, ...]


def require_test_tenant(services: Services) -> Tenant:
    """The current tenant when it is a test tenant; 403 ``not_a_test_tenant`` otherwise, 404
    when it was never created (its row, not a default, decides)."""
    tenant = get_tenant(services)
    if not tenant.is_test:
        raise Forbidden("not_a_test_tenant",
                        f"the testkit works in test tenants only; {tenant.id} is a "
                        f"{tenant.kind.value} tenant (create one with `lastmile tenants "
                        "create doortest:sandbox`)", field="tenant")
    return tenant


def test_region_id(tenant: str) -> str:
    """The region the testkit makes when a test tenant has none: ``reg_test_<l0>_<l1>``
    (``core.tenancy.region_id_in``)."""
    return region_id_in(tenant, "reg_test")


def region(services: Services, region_id: str | None = None) -> Region:
    """``region_id`` of the test tenant (404 if absent); without one, the tenant's first
    region by id, created (a Palo Alto box, USD) when the tenant has none."""
    require_test_tenant(services)
    with services.uow(read_only=True) as uow:
        if region_id is not None:
            found = uow.regions.get(region_id)
            if found is None:
                raise NotFound("region_not_found", f"no region {region_id}", field="region_id")
            return found
        regions = sorted(uow.regions.list(), key=lambda r: r.id)
    if regions:
        return regions[0]
    c = _CENTER
    polygon = (Point(lat=c.lat - _HALF_LAT, lng=c.lng - _HALF_LNG),
               Point(lat=c.lat - _HALF_LAT, lng=c.lng + _HALF_LNG),
               Point(lat=c.lat + _HALF_LAT, lng=c.lng + _HALF_LNG),
               Point(lat=c.lat + _HALF_LAT, lng=c.lng - _HALF_LNG))
    return catalog.create_region(
        services, region_id=test_region_id(current_tenant()), name="Test city (Palo Alto)",
        market="testkit", time_zone="America/Los_Angeles", currency="USD", polygon=polygon)


def random_point(services: Services, where: Region) -> Point:
    """A point drawn uniformly inside the region's polygon (``services.rng``); rejection
    sampling in its bounding box, the first vertex's box centre after 200 misses."""
    lats = [v.lat for v in where.polygon.vertices]
    lngs = [v.lng for v in where.polygon.vertices]
    for _ in range(200):
        p = Point(lat=services.rng.uniform(min(lats), max(lats)),
                  lng=services.rng.uniform(min(lngs), max(lngs)))
        if where.polygon.contains(p):
            return p
    return Point(lat=(min(lats) + max(lats)) / 2, lng=(min(lngs) + max(lngs)) / 2)


def _point(services: Services, where: Region, lat: float | None, lng: float | None) -> Point:
    if (lat is None) != (lng is None):
        raise InvalidInput("incomplete_location",
                           f"give both lat and lng, or neither (got lat={lat}, lng={lng})",
                           field="lat" if lat is None else "lng")
    if lat is None or lng is None:
        return random_point(services, where)
    return Point(lat=lat, lng=lng)


def _key(services: Services, role: str, subject_id: str, with_key: bool) -> str | None:
    return issue_api_key(services, role=role, subject_id=subject_id)[1] if with_key else None


def _name(prefix: str, name: str | None) -> str:
    return name or f"Test {prefix} {secrets.token_hex(3)}"


def create_consumer(services: Services, *, region_id: str | None = None,
                    lat: float | None = None, lng: float | None = None,
                    name: str | None = None, with_key: bool = False) -> Created[Consumer]:
    """A test consumer whose home address is at (lat, lng), or at a random point of the
    region when neither is given."""
    where = region(services, region_id)
    home = _point(services, where, lat, lng)
    consumer = catalog.create_consumer(
        services, region_id=where.id, name=_name("consumer", name),
        addresses=(Address(label="home", location=home, line1="1 Test Street"),))
    return Created(party=consumer, api_key=_key(services, "consumer", consumer.id, with_key))


def create_merchant(services: Services, *, template: str = "pizza",
                    region_id: str | None = None, lat: float | None = None,
                    lng: float | None = None, name: str | None = None,
                    prep_time_s: int = 600, with_key: bool = False) -> Created[Merchant]:
    """A test merchant with the menu of ``template`` (``TEMPLATES``)."""
    if template not in TEMPLATES:
        raise InvalidInput("unknown_template",
                           f"template must be one of {', '.join(sorted(TEMPLATES))} "
                           f"(got {template!r})", field="template")
    where = region(services, region_id)
    merchant = catalog.create_merchant(
        services, region_id=where.id, name=_name(template, name),
        location=_point(services, where, lat, lng), prep_time_s=prep_time_s)
    for i, (item, price) in enumerate(TEMPLATES[template]):
        catalog.upsert_item(services, merchant.id, item_id=None, name=item, price_minor=price,
                            options=_OPTIONS if i == 0 else (), actor=SYSTEM)
    with services.uow(read_only=True) as uow:
        full = uow.merchants.get(merchant.id)
    return Created(party=full or merchant,
                   api_key=_key(services, "merchant", merchant.id, with_key))


def create_courier(services: Services, *, live: LiveStore | None = None,
                   region_id: str | None = None, lat: float | None = None,
                   lng: float | None = None, name: str | None = None,
                   vehicle: Vehicle = Vehicle.BICYCLE, shift_s: int = 3600,
                   auto_accept: bool = False, with_key: bool = False) -> Created[Courier]:
    """A test courier on shift at (lat, lng) (random in the region when not given), its
    device ``testkit-<courier id>``. With ``live`` its position is stored at once, so the
    next dispatch round sees it. ``auto_accept``: its offers are accepted by themselves
    (``app.testkit_accept``)."""
    if not 600 <= shift_s <= 16 * 3600:
        raise InvalidInput("invalid_shift", f"shift_s must be in [600, 57600] (got {shift_s})",
                           field="shift_s")
    where = region(services, region_id)
    at = _point(services, where, lat, lng)
    courier = catalog.create_courier(services, region_id=where.id, name=_name("courier", name),
                                     vehicle=vehicle, location=at)
    actor = Actor(kind=ActorKind.COURIER, id=courier.id)
    now = services.clock.now()
    on_shift = fulfilment.start_shift(services, courier.id, device_id=f"testkit-{courier.id}",
                                      ends_at=now + shift_s, actor=actor)
    if live is not None:
        live.upsert(CourierLive(courier_id=courier.id, region_id=where.id, lat=at.lat,
                                lng=at.lng, status="idle", updated_at=now))
    if auto_accept:
        set_auto_accept(services, courier.id, True)
    return Created(party=on_shift, api_key=_key(services, "courier", courier.id, with_key))


def auto_accepting(tenant: Tenant) -> frozenset[str]:
    """The couriers of ``tenant`` whose offers are accepted by themselves."""
    config = tenant.config.get(CONFIG_KEY)
    ids = config.get("auto_accept", []) if isinstance(config, dict) else []
    return frozenset(str(i) for i in ids) if isinstance(ids, list) else frozenset()


def set_auto_accept(services: Services, courier_id: str, on: bool) -> None:
    """Flag (or unflag) a courier of the current test tenant as accepting automatically."""
    tenant = require_test_tenant(services)
    with services.uow(read_only=True) as uow:
        if uow.couriers.get(courier_id) is None:
            raise NotFound("courier_not_found", f"no courier {courier_id}", field="courier_id")
    config = tenant.config.get(CONFIG_KEY)
    base = dict(config) if isinstance(config, dict) else {}
    listed = [str(i) for i in base.get("auto_accept", []) if str(i) != courier_id]
    if on:
        listed.append(courier_id)
    configure(services, {CONFIG_KEY: {**base, "auto_accept": listed[-MAX_AUTO_ACCEPT:]}})


def place_order(services: Services, *, consumer_id: str, merchant_id: str,
                item_ids: Sequence[str] = (), tip_minor: int = 0, require_pin: bool = False,
                idempotency_key: str | None = None) -> TestOrder:
    """Quote, then place, an order of one of each ``item_ids`` (the merchant's first
    available item when none) to the consumer's first address."""
    require_test_tenant(services)
    with services.uow(read_only=True) as uow:
        consumer = uow.consumers.get(consumer_id)
        merchant = uow.merchants.get(merchant_id)
    if consumer is None:
        raise NotFound("consumer_not_found", f"no consumer {consumer_id}", field="consumer_id")
    if merchant is None:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", field="merchant_id")
    if not consumer.addresses:
        raise InvalidInput("no_address", f"consumer {consumer_id} has no address",
                           field="consumer_id")
    items = tuple(item_ids) or tuple(i.id for i in merchant.menu if i.available)[:1]
    if not items:
        raise InvalidInput("empty_menu", f"merchant {merchant_id} has no available item",
                           field="merchant_id")
    request = ordering.OrderRequest(
        consumer_id=consumer.id, merchant_id=merchant.id,
        lines=tuple(ordering.LineRequest(item_id=i, quantity=1) for i in items),
        dropoff=consumer.addresses[0].location, tip_minor=tip_minor, require_pin=require_pin)
    quote = ordering.get_quote(services, request)
    placed = ordering.place_order(services, request,
                                  idempotency_key=idempotency_key or secrets.token_hex(12))
    return TestOrder(quote=quote, order=placed.order, replayed=placed.replayed)


_OPEN = (OrderStatus.PLACED, *sorted(AWAITING_COURIER))
_OPS = Actor(kind=ActorKind.OPS, id="testkit")


def reset(services: Services, live: LiveStore) -> Reset:
    """Clear what earlier journeys left running in the test tenant: cancel its orders no
    courier holds yet and end the shifts of its couriers holding no order, so the next
    journey's order goes to the next journey's courier. Each one that moved on meanwhile
    is left alone (the next reset sees it)."""
    require_test_tenant(services)
    with services.uow(read_only=True) as uow:
        orders = uow.orders.list(statuses=_OPEN, limit=500)
        couriers = [c for r in uow.regions.list()
                    for c in uow.couriers.list_region(r.id, on_shift_only=True)
                    if not c.active_order_ids]
    cancelled, ended = [], []
    for order in orders:
        try:
            fulfilment.cancel_order(services, order.id, reason="testkit reset", actor=_OPS)
            cancelled.append(order.id)
        except DomainError:
            continue
    for courier in couriers:
        try:
            end_shift(services, courier.id, actor=_OPS, live=live, reason="testkit reset")
            ended.append(courier.id)
        except DomainError:
            continue
    return Reset(cancelled_order_ids=tuple(cancelled), ended_courier_ids=tuple(ended))
