"""Setting up the marketplace: regions, merchants and menus, consumers, couriers."""

from __future__ import annotations

from dataclasses import replace

from lastmile.app.context import Services, new_event, record
from lastmile.app.ports import UnitOfWork
from lastmile.app.retry import retrying
from lastmile.app.tenancy import current_tenant
from lastmile.app.tenants import config_of, tenant_in
from lastmile.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from lastmile.core.geo import Point, Polygon
from lastmile.core.ids import ConsumerId, CourierId, ItemId, MerchantId, RegionId
from lastmile.core.model import (
    Address,
    Consumer,
    Courier,
    ItemOption,
    MenuItem,
    Merchant,
    OpeningWindow,
    Region,
    Vehicle,
    parse_phone,
)
from lastmile.core.money import Money
from lastmile.core.orders import Actor, ActorKind


@retrying
def create_region(services: Services, *, name: str, market: str, time_zone: str,
                  polygon: tuple[Point, ...], currency: str | None = None, tax_rate_bp: int = 0,
                  region_id: str | None = None) -> Region:
    """A region of the current tenant. Its currency defaults to the tenant's
    (``config.currency``); a tenant with a currency has all its regions in it, so another
    one is refused (422 ``currency_mismatch``): prices, fees and payouts of one tenant
    never need converting. Without either, ``currency`` is required (422)."""
    with services.uow() as uow:
        own = config_of(tenant_in(uow, services)).currency
        if currency is None and own is None:
            raise InvalidInput("currency_required", "currency is required: the tenant has "
                               "no currency configured (config.currency)", field="currency")
        if own is not None and currency not in (None, own):
            raise InvalidInput("currency_mismatch",
                               f"currency must be the tenant's currency {own} "
                               f"(config.currency) (got {currency})", field="currency")
        region = Region(
            id=RegionId(region_id or services.ids.new("reg")), name=name, market=market,
            time_zone=time_zone, currency=currency or own or "", polygon=Polygon(vertices=polygon),
            tax_rate_bp=tax_rate_bp,
        )
        if uow.regions.get(region.id) is not None:
            raise Conflict("region_exists", f"region {region.id} already exists")
        uow.regions.add(region)
        uow.commit()
    return region


def _region(uow: UnitOfWork, region_id: str) -> Region:
    region = uow.regions.get(region_id)
    if region is None:
        raise NotFound("region_not_found", f"no region {region_id}", field="region_id")
    return region


def _inside(region: Region, point: Point, field: str) -> None:
    if not region.polygon.contains(point):
        raise InvalidInput("outside_service_area",
                           f"{field} ({point.lat}, {point.lng}) is outside region {region.id}",
                           field=field)


def create_merchant(services: Services, *, region_id: str, name: str, location: Point,
                    prep_time_s: int, hours: tuple[OpeningWindow, ...] = ()) -> Merchant:
    with services.uow() as uow:
        region = _region(uow, region_id)
        _inside(region, location, "location")
        merchant = Merchant(
            id=MerchantId(services.ids.new("mer")), region_id=RegionId(region.id), name=name,
            location=location, prep_time_s=prep_time_s, hours=hours,
        )
        uow.merchants.add(merchant)
        uow.commit()
        return merchant


def _own_merchant(uow: UnitOfWork, merchant_id: str, actor: Actor) -> Merchant:
    merchant = uow.merchants.get(merchant_id)
    if merchant is None or (actor.kind is ActorKind.MERCHANT and actor.id != merchant_id):
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", field="merchant_id")
    if actor.kind not in (ActorKind.MERCHANT, ActorKind.OPS, ActorKind.SYSTEM):
        raise Forbidden("actor_not_allowed", f"a {actor.kind.value} may not edit menus")
    return merchant


@retrying
def upsert_item(services: Services, merchant_id: str, *, item_id: str | None, name: str,
                price_minor: int, options: tuple[ItemOption, ...] = (), available: bool = True,
                actor: Actor) -> MenuItem:
    """Add an item (new id) or replace the item with ``item_id``."""
    with services.uow() as uow:
        merchant = _own_merchant(uow, merchant_id, actor)
        region = _region(uow, merchant.region_id)
        item = MenuItem(
            id=ItemId(item_id or services.ids.new("itm")), name=name,
            price=Money(amount_minor=price_minor, currency=region.currency), options=options,
            available=available,
        )
        menu = tuple(i for i in merchant.menu if i.id != item.id) + (item,)
        uow.merchants.save(replace(merchant, menu=menu))
        record(uow, services, new_event(
            services, type="merchant.menu_changed", region_id=merchant.region_id,
            subject_id=merchant.id, actor_kind=actor.kind.value, actor_id=actor.id,
            data={"item_id": item.id, "change": "upsert"},
        ))
        uow.commit()
        return item


@retrying
def remove_item(services: Services, merchant_id: str, item_id: str, *, actor: Actor) -> None:
    with services.uow() as uow:
        merchant = _own_merchant(uow, merchant_id, actor)
        if all(i.id != item_id for i in merchant.menu):
            # The item is the resource addressed by the path: absent is 404 naming item_id
            # (Merchant.item's 422 is for order lines that name a missing item).
            raise NotFound("item_not_found",
                           f"item {item_id!r} is not on the menu of merchant {merchant.id}",
                           field="item_id")
        menu = tuple(i for i in merchant.menu if i.id != item_id)
        uow.merchants.save(replace(merchant, menu=menu))
        record(uow, services, new_event(
            services, type="merchant.menu_changed", region_id=merchant.region_id,
            subject_id=merchant.id, actor_kind=actor.kind.value, actor_id=actor.id,
            data={"item_id": item_id, "change": "remove"},
        ))
        uow.commit()


@retrying
def create_consumer(services: Services, *, region_id: str, name: str,
                    addresses: tuple[Address, ...] = (), phone: str | None = None) -> Consumer:
    """A consumer of the current tenant, under its parties policy (``config.parties``):

    - ``phone`` is normalised (``core.model.parse_phone``, 422 ``invalid_phone``);
    - missing where the tenant requires one: 422 ``phone_required``;
    - a phone another consumer of the tenant has: 409 ``phone_taken`` (a concurrent create
      with the same phone loses on the unique index and, retried, gets the same 409).
    """
    number = None if phone is None else parse_phone(phone)
    with services.uow() as uow:
        if number is None and config_of(tenant_in(uow, services)).parties.phone_required:
            raise InvalidInput("phone_required",
                               f"phone is required for consumers of tenant {current_tenant()} "
                               "(config.parties.phone_required)", field="phone")
        region = _region(uow, region_id)
        for i, address in enumerate(addresses):
            _inside(region, address.location, f"addresses[{i}].location")
        if number is not None and uow.consumers.by_phone(number) is not None:
            raise Conflict("phone_taken",
                           f"phone {number} is another consumer's in tenant {current_tenant()}",
                           field="phone")
        consumer = Consumer(id=ConsumerId(services.ids.new("con")), region_id=RegionId(region.id),
                            name=name, addresses=addresses, phone=number)
        uow.consumers.add(consumer)
        uow.commit()
        return consumer


def create_courier(services: Services, *, region_id: str, name: str, vehicle: Vehicle,
                   location: Point | None = None) -> Courier:
    with services.uow() as uow:
        _region(uow, region_id)
        courier = Courier(id=CourierId(services.ids.new("cou")), region_id=RegionId(region_id),
                          name=name, vehicle=vehicle, location=location)
        uow.couriers.add(courier)
        uow.commit()
        return courier
