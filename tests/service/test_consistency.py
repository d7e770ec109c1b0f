"""Versions, compare-and-set, upserts and the offer rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest
from offer_helpers import OPS, a_confirmed_order, courier_actor, on_shift

from lastmile.app import offers, shifts
from lastmile.core.errors import Conflict
from lastmile.core.offers import Offer, OfferStatus
from lastmile.core.orders import SYSTEM
from lastmile.sim.seed import DEMO_REGION_ID


def _events(p, subject_id: str) -> list[str]:
    with p.services.uow(read_only=True) as uow:
        return [e.type for e in uow.events.for_subject(subject_id)]


def test_saving_a_courier_returns_it_with_the_next_version(platform):
    cid = platform.seed.courier_ids[0]
    with platform.services.uow() as uow:
        courier = uow.couriers.get(cid)
        saved = uow.couriers.save(replace(courier, name="Renamed"))
        uow.commit()
    assert saved.version == courier.version + 1
    with platform.services.uow(read_only=True) as uow:
        assert uow.couriers.get(cid) == saved


@pytest.mark.parametrize("repo", ["couriers", "merchants"])
def test_saving_from_a_stale_read_is_a_concurrent_update(platform, repo):
    subject = (platform.seed.courier_ids if repo == "couriers" else platform.seed.merchant_ids)[0]
    with platform.services.uow(read_only=True) as uow:
        stale = getattr(uow, repo).get(subject)
    with platform.services.uow() as uow:
        getattr(uow, repo).save(replace(stale, name="First"))
        uow.commit()
    with platform.services.uow() as uow, pytest.raises(Conflict) as err:
        getattr(uow, repo).save(replace(stale, name="Second"))
    assert err.value.code == "concurrent_update"
    assert err.value.extra["current_version"] == stale.version + 1
    with platform.services.uow(read_only=True) as uow:
        assert getattr(uow, repo).get(subject).name == "First"


def test_an_offer_closed_meanwhile_cannot_be_closed_again(platform):
    cid = on_shift(platform)
    order = a_confirmed_order(platform)
    offer = offers.make_offer(platform.services, courier_id=cid, order_ids=(order.id,),
                              actor=SYSTEM)
    offers.decline_offer(platform.services, offer.id, reason="no", actor=courier_actor(cid))
    with platform.services.uow() as uow, pytest.raises(Conflict) as err:
        uow.offers.save(replace(offer, status=OfferStatus.ACCEPTED))
    assert err.value.code == "concurrent_update"
    assert err.value.extra["current_state"] == "declined"


def test_the_inbox_records_an_event_once(platform):
    with platform.services.uow() as uow:
        assert uow.inbox.seen("projector", "evt_1") is False
        assert uow.inbox.seen("projector", "evt_1") is True
        assert uow.inbox.seen("other", "evt_1") is False
        uow.commit()


def test_banning_a_device_twice_keeps_the_first_ban(platform):
    with platform.services.uow() as uow:
        assert uow.banned_devices.ban("dev-1", reason="first", at=1.0, by="ops") is True
        assert uow.banned_devices.ban("dev-1", reason="second", at=2.0, by="ops") is False
        assert uow.banned_devices.among({"dev-1", "dev-2"}) == {"dev-1"}


def test_a_unique_key_refusing_a_write_is_a_retryable_conflict_not_a_500(platform):
    with pytest.raises(Conflict) as err, platform.services.uow() as uow:
        uow.regions.add(uow.regions.get(DEMO_REGION_ID))
    assert err.value.code == "concurrent_update"


def test_a_write_breaking_a_not_null_rule_is_a_conflict_that_is_not_retried(platform):
    import sqlalchemy as sa

    from lastmile.adapters.db.tables import regions

    with pytest.raises(Conflict) as err, platform.services.uow() as uow:
        # Core, not raw SQL: the tenant layer refuses text it cannot scope.
        uow.regions.conn.execute(sa.insert(regions).values(id="reg_x"))
    assert err.value.code == "constraint_violated"


def _raw_offer(courier_id: str, order_id: str, offer_id: str, now: float) -> Offer:
    return Offer(id=offer_id, region_id="reg", courier_id=courier_id, order_ids=(order_id,),
                 created_at=now, expires_at=now + 60)


def test_the_database_holds_one_pending_offer_per_courier(platform):
    cid, now = platform.seed.courier_ids[0], platform.clock.now()
    with pytest.raises(Conflict) as err, platform.services.uow() as uow:
        uow.offers.add(_raw_offer(cid, "ord_a", "off_a", now))
        uow.offers.add(_raw_offer(cid, "ord_b", "off_b", now))
    assert err.value.code == "concurrent_update"


def test_the_database_holds_one_pending_offer_per_order(platform):
    c0, c1 = platform.seed.courier_ids[:2]
    now = platform.clock.now()
    with pytest.raises(Conflict) as err, platform.services.uow() as uow:
        uow.offers.add(_raw_offer(c0, "ord_a", "off_a", now))
        uow.offers.add(_raw_offer(c1, "ord_a", "off_b", now))
    assert err.value.code == "concurrent_update"


def test_a_closed_offer_frees_its_order_for_a_new_one(platform):
    c0, c1 = platform.seed.courier_ids[:2]
    now = platform.clock.now()
    with platform.services.uow() as uow:
        first = _raw_offer(c0, "ord_a", "off_a", now)
        uow.offers.add(first)
        uow.offers.save(replace(first, status=OfferStatus.DECLINED, decided_at=now))
        uow.offers.add(_raw_offer(c1, "ord_a", "off_b", now))
        uow.commit()
        assert [o.id for o in uow.offers.pending_for_order("ord_a")] == ["off_b"]


def test_an_expired_offer_is_closed_with_its_event_before_the_courier_gets_a_new_one(platform):
    cid = on_shift(platform)
    first, second = a_confirmed_order(platform, key="a"), a_confirmed_order(platform, key="b")
    old = offers.make_offer(platform.services, courier_id=cid, order_ids=(first.id,),
                            actor=SYSTEM, ttl_s=30)
    platform.clock.advance(31)
    new = offers.make_offer(platform.services, courier_id=cid, order_ids=(second.id,),
                            actor=SYSTEM)
    assert _events(platform, old.id) == ["offer.made", "offer.expired"]
    assert offers.current_offer(platform.services, cid) == new


def test_an_expired_offer_is_closed_with_its_event_before_its_order_is_offered_again(platform):
    c0, c1 = on_shift(platform, 0), on_shift(platform, 1)
    order = a_confirmed_order(platform)
    old = offers.make_offer(platform.services, courier_id=c0, order_ids=(order.id,),
                            actor=SYSTEM, ttl_s=30)
    platform.clock.advance(31)
    offers.make_offer(platform.services, courier_id=c1, order_ids=(order.id,), actor=SYSTEM)
    assert _events(platform, old.id) == ["offer.made", "offer.expired"]


def test_accepting_an_expired_offer_closes_it_with_its_event(platform):
    cid = on_shift(platform)
    order = a_confirmed_order(platform)
    offer = offers.make_offer(platform.services, courier_id=cid, order_ids=(order.id,),
                              actor=SYSTEM, ttl_s=30)
    platform.clock.advance(31)
    with pytest.raises(Conflict) as err:
        offers.accept_offer(platform.services, offer.id, actor=courier_actor(cid))
    assert err.value.code == "offer_expired"
    assert _events(platform, offer.id) == ["offer.made", "offer.expired"]


def test_every_closing_of_an_offer_records_its_event(platform):
    cid = on_shift(platform)
    orders = [a_confirmed_order(platform, key=k) for k in "abc"]
    made = [offers.make_offer(platform.services, courier_id=cid, order_ids=(o.id,),
                              actor=SYSTEM) for o in orders[:1]]
    offers.decline_offer(platform.services, made[0].id, reason="far", actor=courier_actor(cid))
    second = offers.make_offer(platform.services, courier_id=cid, order_ids=(orders[1].id,),
                               actor=SYSTEM)
    offers.accept_offer(platform.services, second.id, actor=courier_actor(cid))
    assert _events(platform, made[0].id)[-1] == "offer.declined"
    assert _events(platform, second.id)[-1] == "offer.accepted"


def test_ending_a_shift_withdraws_the_live_offer_with_its_event(platform):
    cid = on_shift(platform)
    order = a_confirmed_order(platform)
    offer = offers.make_offer(platform.services, courier_id=cid, order_ids=(order.id,),
                              actor=SYSTEM)
    shifts.end_shift(platform.services, cid, actor=courier_actor(cid), live=platform.container.live)
    assert _events(platform, offer.id) == ["offer.made", "offer.withdrawn"]
    with platform.services.uow(read_only=True) as uow:
        assert uow.offers.get(offer.id).status is OfferStatus.WITHDRAWN


def test_withdrawing_a_courier_s_offers_closes_the_expired_one_as_expired(platform):
    cid = on_shift(platform)
    order = a_confirmed_order(platform)
    offer = offers.make_offer(platform.services, courier_id=cid, order_ids=(order.id,),
                              actor=SYSTEM, ttl_s=30)
    platform.clock.advance(31)
    with platform.services.uow() as uow:
        closed = offers.withdraw_courier_offers(uow, platform.services, cid, actor=OPS,
                                                now=platform.clock.now(), reason="banned")
        uow.commit()
    assert [(o.id, o.status) for o in closed] == [(offer.id, OfferStatus.EXPIRED)]


def test_expire_due_offers_closes_every_offer_past_its_ttl_page_by_page(platform, monkeypatch):
    monkeypatch.setattr(offers, "EXPIRY_BATCH", 2)
    couriers = [on_shift(platform, i) for i in range(3)]
    made = [offers.make_offer(platform.services, courier_id=cid,
                              order_ids=(a_confirmed_order(platform, key=cid).id,),
                              actor=SYSTEM, ttl_s=30 + 10 * i)
            for i, cid in enumerate(couriers)]
    platform.clock.advance(45)  # the first two are past their expiry, the third is not
    assert offers.expire_due_offers(platform.services) == 2
    assert [_events(platform, o.id)[-1] for o in made] == [
        "offer.expired", "offer.expired", "offer.made"]
    platform.clock.advance(10)
    assert offers.expire_due_offers(platform.services) == 1
    assert offers.expire_due_offers(platform.services) == 0


def test_a_delivery_saved_from_a_stale_read_is_a_concurrent_update(platform):
    from drive_helpers import a_request

    from lastmile.app import drive

    view = drive.create_delivery(platform.services, a_request(platform))
    with platform.services.uow(read_only=True) as uow:
        stale = uow.deliveries.by_order(view.order.id)
    with platform.services.uow() as uow:
        assert uow.deliveries.save(replace(stale, outcome="delivered")).version == 1
        uow.commit()
    with platform.services.uow() as uow, pytest.raises(Conflict) as err:
        uow.deliveries.save(replace(stale, delayed_at=platform.clock.now()))
    assert err.value.code == "concurrent_update"


def test_the_migration_closes_pending_offers_that_break_the_new_rules(platform):
    """Before 0006 an expired offer stayed pending, so a courier (or an order) could hold two;
    the upgrade expires all but the newest before building the unique indexes."""
    import sqlalchemy as sa
    from alembic import command

    from lastmile.adapters.db.engine import alembic_config

    engine = platform.container.engine
    cfg = alembic_config(engine)
    command.downgrade(cfg, "0005")
    rows = [("off_1", "cou_a", "ord_1", 1.0), ("off_2", "cou_a", "ord_2", 2.0),
            ("off_3", "cou_b", "ord_3", 1.0), ("off_4", "cou_c", "ord_3", 2.0)]
    with engine.begin() as conn:
        for oid, cid, order_id, at in rows:
            conn.execute(sa.text(
                "insert into offers (id, region_id, courier_id, status, order_ids, created_at, "
                "expires_at) values (:id, 'reg', :cid, 'pending', '[]', :at, :exp)"),
                {"id": oid, "cid": cid, "at": at, "exp": at + 60})
            conn.execute(sa.text("insert into offer_orders (offer_id, order_id) values (:o, :r)"),
                         {"o": oid, "r": order_id})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        status = dict(conn.execute(sa.text("select id, status from offers")).all())
        live = {r for (r,) in conn.execute(sa.text(
            "select offer_id from offer_orders where pending"))}
    assert status == {"off_1": "expired", "off_2": "pending", "off_3": "expired",
                      "off_4": "pending"}
    assert live == {"off_2", "off_4"}


def test_housekeeping_closes_an_offer_past_its_ttl_when_no_dispatcher_runs(tmp_path):
    import random
    import time
    from types import SimpleNamespace

    from lastmile.adapters.clock import ManualClock, SequentialIds
    from lastmile.bootstrap import build
    from lastmile.settings import Settings
    from lastmile.sim.seed import seed_demo

    clock = ManualClock()
    container = build(Settings(data_dir=tmp_path, housekeeping_interval_s=0.05), clock=clock,
                      ids=SequentialIds(), rng=random.Random(3))
    try:
        seed = seed_demo(container.services, seed=5, merchants=2, consumers=1, couriers=1)
        p = SimpleNamespace(services=container.services, seed=seed, clock=clock)
        cid = on_shift(p)
        order = a_confirmed_order(p)
        offer = offers.make_offer(container.services, courier_id=cid, order_ids=(order.id,),
                                  actor=SYSTEM, ttl_s=30)
        clock.advance(31)
        container.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "offer.expired" not in _events(p, offer.id):
            time.sleep(0.05)
        assert _events(p, offer.id) == ["offer.made", "offer.expired"]
    finally:
        container.close()
