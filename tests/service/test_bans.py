"""Banned devices and couriers: never a shift, never a move."""

import pytest

from fakes import in_memory
from lastmile.app import bans, fulfilment
from lastmile.app.tracking import ingest_pings
from lastmile.core.errors import Forbidden
from lastmile.core.orders import Actor, ActorKind

OPS = Actor(kind=ActorKind.OPS, id="ops-1")


def _courier(p, i=0):
    cid = p.seed.courier_ids[i]
    return cid, Actor(kind=ActorKind.COURIER, id=cid)


def _ping(p, device, dt=0.0, dlat=0.0):
    return {"device_id": device, "lat": 37.44 + dlat, "lng": -122.14, "accuracy_m": 10,
            "client_ts": p.clock.now() + dt}


@in_memory
def test_banned_device_cannot_start_a_shift(platform):
    cid, me = _courier(platform)
    bans.ban_device(platform.services, "stolen-phone", reason="reported stolen", actor=OPS)
    with pytest.raises(Forbidden) as err:
        fulfilment.start_shift(platform.services, cid, device_id="stolen-phone",
                               ends_at=platform.clock.now() + 3600, actor=me)
    assert err.value.code == "device_banned"


@in_memory
def test_banned_device_never_moves_the_courier_even_when_main_is_silent(platform):
    p = platform
    cid, me = _courier(p)
    fulfilment.start_shift(p.services, cid, device_id="main", ends_at=p.clock.now() + 7200,
                           actor=me)
    tracking = p.container.tracking
    assert ingest_pings(tracking, courier_id=cid, raw=[_ping(p, "main")]).accepted == 1
    bans.ban_device(p.services, "ex-courier-phone", reason="ex-courier", actor=OPS)
    p.clock.advance(600)  # the main device has been silent for ten minutes
    result = ingest_pings(tracking, courier_id=cid, raw=[
        _ping(p, "ex-courier-phone", dt=i, dlat=0.0001 * i) for i in range(6)])
    assert result.accepted == 0
    assert {v.reason.value for v in result.verdicts} == {"banned_device"}


@in_memory
def test_banning_a_courier_bans_every_device_they_worked_from(platform):
    p = platform
    cid, me = _courier(p)
    for device in ("phone-a", "phone-b"):
        fulfilment.start_shift(p.services, cid, device_id=device, ends_at=p.clock.now() + 3600,
                               actor=me)
        fulfilment.end_shift(p.services, cid, actor=me)
    devices = bans.ban_courier(p.services, cid, reason="fraud", actor=OPS)
    assert devices == ("phone-a", "phone-b")
    other, other_actor = _courier(p, 1)
    with pytest.raises(Forbidden):
        fulfilment.start_shift(p.services, other, device_id="phone-a",
                               ends_at=p.clock.now() + 3600, actor=other_actor)
    with pytest.raises(Forbidden) as err:
        fulfilment.start_shift(p.services, cid, device_id="new-phone",
                               ends_at=p.clock.now() + 3600, actor=me)
    assert err.value.code == "courier_banned"


@in_memory
def test_only_ops_can_ban(platform):
    _, me = _courier(platform)
    with pytest.raises(Forbidden):
        bans.ban_device(platform.services, "x", reason="r", actor=me)
