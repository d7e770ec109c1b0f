"""Menu and region rules of ``app.catalog``, on the fake unit of work (milliseconds)."""

import pytest

from fakes import in_memory
from lastmile.app import catalog
from lastmile.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from lastmile.core.geo import Point
from lastmile.core.orders import Actor, ActorKind

PARIS = (Point(lat=48.80, lng=2.25), Point(lat=48.80, lng=2.42), Point(lat=48.90, lng=2.42))


def _merchant(p, i=0):
    mid = p.seed.merchant_ids[i]
    return mid, Actor(kind=ActorKind.MERCHANT, id=mid)


@in_memory
def test_an_added_item_is_priced_in_the_regions_currency_and_recorded(platform):
    mid, me = _merchant(platform)
    item = catalog.upsert_item(platform.services, mid, item_id=None, name="Soup",
                               price_minor=450, actor=me)
    assert item.price.currency == "USD" and platform.uow.last.committed
    with platform.services.uow(read_only=True) as uow:
        assert uow.merchants.get(mid).item(item.id) == item
        (event,) = [e for e in uow.events.for_subject(mid) if e.data["item_id"] == item.id]
    assert (event.type, event.data["change"], event.actor_id) == ("merchant.menu_changed",
                                                                   "upsert", mid)


@in_memory
def test_an_upsert_with_an_existing_id_replaces_that_item_only(platform):
    mid, me = _merchant(platform)
    with platform.services.uow(read_only=True) as uow:
        before = uow.merchants.get(mid).menu
    catalog.upsert_item(platform.services, mid, item_id=before[0].id, name="Renamed",
                        price_minor=999, actor=me)
    with platform.services.uow(read_only=True) as uow:
        after = uow.merchants.get(mid).menu
    assert [i.id for i in after] == [i.id for i in before[1:]] + [before[0].id]
    assert after[-1].name == "Renamed" and after[:-1] == before[1:]


@in_memory
def test_a_merchant_cannot_edit_another_merchants_menu_and_nothing_is_saved(platform):
    mid, _ = _merchant(platform)
    _, other = _merchant(platform, 1)
    with pytest.raises(NotFound):
        catalog.upsert_item(platform.services, mid, item_id=None, name="X", price_minor=1,
                            actor=other)
    assert not platform.uow.last.committed


@in_memory
def test_a_consumer_may_not_edit_menus(platform):
    mid, _ = _merchant(platform)
    with pytest.raises(Forbidden) as err:
        catalog.remove_item(platform.services, mid, "itm_any",
                            actor=Actor(kind=ActorKind.CONSUMER, id="con_1"))
    assert err.value.code == "actor_not_allowed"


@in_memory
def test_removing_an_item_not_on_the_menu_is_refused_and_keeps_the_menu(platform):
    mid, me = _merchant(platform)
    with platform.services.uow(read_only=True) as uow:
        before = uow.merchants.get(mid).menu
    with pytest.raises(NotFound) as err:
        catalog.remove_item(platform.services, mid, "itm_nope", actor=me)
    assert (err.value.code, err.value.field) == ("item_not_found", "item_id")
    with platform.services.uow(read_only=True) as uow:
        assert uow.merchants.get(mid).menu == before


@in_memory
def test_a_region_needs_a_known_time_zone_and_a_free_id(platform):
    with pytest.raises(InvalidInput) as err:
        catalog.create_region(platform.services, name="P", market="p", time_zone="Mars/Olympus",
                              currency="EUR", polygon=PARIS)
    assert err.value.code == "invalid_time_zone"
    catalog.create_region(platform.services, region_id="reg_paris", name="P", market="p",
                          time_zone="Europe/Paris", currency="EUR", polygon=PARIS)
    with pytest.raises(Conflict) as err:
        catalog.create_region(platform.services, region_id="reg_paris", name="P", market="p",
                              time_zone="Europe/Paris", currency="EUR", polygon=PARIS)
    assert err.value.code == "region_exists"


@in_memory
def test_a_merchant_outside_its_region_is_refused_naming_the_field(platform):
    with pytest.raises(InvalidInput) as err:
        catalog.create_merchant(platform.services, region_id=platform.seed.region.id, name="Far",
                                location=Point(lat=48.85, lng=2.35), prep_time_s=600)
    assert (err.value.code, err.value.field) == ("outside_service_area", "location")
