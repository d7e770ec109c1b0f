"""No half-written state: a request that is refused leaves every store as it was."""

import pytest

from lastmile.app import fulfilment
from lastmile.app.tracking import ingest_pings
from lastmile.core.errors import InvalidInput
from lastmile.core.orders import Actor, ActorKind


def _on_shift(p):
    cid = p.seed.courier_ids[0]
    courier = fulfilment.start_shift(p.services, cid, device_id="main",
                                     ends_at=p.clock.now() + 3600,
                                     actor=Actor(kind=ActorKind.COURIER, id=cid))
    return cid, courier.shift_id


def _ping(p, lat, dt=0.0):
    return {"device_id": "main", "lat": lat, "lng": -122.14, "accuracy_m": 10,
            "client_ts": p.clock.now() + dt}


def test_a_ping_batch_is_validated_whole_before_the_tracking_state_moves(platform):
    p = platform
    cid, shift_id = _on_shift(p)
    tracking = p.container.tracking
    with pytest.raises(InvalidInput) as err:
        ingest_pings(tracking, courier_id=cid, raw=[_ping(p, 85.5)])
    assert err.value.field == "pings[0].lat"
    assert tracking.states.get(shift_id) is None
    assert p.container.live.get(cid) is None
    assert ingest_pings(tracking, courier_id=cid, raw=[_ping(p, 37.44)]).accepted == 1


def test_a_refused_batch_after_accepted_ones_keeps_the_state_of_the_accepted_ones(platform):
    p = platform
    cid, shift_id = _on_shift(p)
    tracking = p.container.tracking
    ingest_pings(tracking, courier_id=cid, raw=[_ping(p, 37.44)])
    before = tracking.states.get(shift_id)
    with pytest.raises(InvalidInput):
        ingest_pings(tracking, courier_id=cid, raw=[_ping(p, 37.4401, dt=1),
                                                    _ping(p, -85.2, dt=2)])
    assert tracking.states.get(shift_id) == before
    assert p.container.live.get(cid).lat == 37.44
