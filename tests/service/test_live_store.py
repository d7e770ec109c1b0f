"""One contract, two live stores: in memory and Redis GEO (marked ``redis``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from databases import redis_or_skip, redis_prefix
from lastmile.adapters.live.memory import MemoryLiveStore
from lastmile.adapters.live.redis_store import RedisLiveStore
from lastmile.app.live import COURIER_STATUSES, CourierLive, LiveStore
from lastmile.core.errors import InvalidInput

T0 = 1_700_000_000.0
MAX_AGE_S = 120.0
LAT0, LNG0 = 52.5200, 13.4050  # ~111 m per 0.001 degree of latitude


def a_courier(**overrides: Any) -> CourierLive:
    fields: dict[str, Any] = {
        "courier_id": "cou_1",
        "region_id": "berlin",
        "lat": LAT0,
        "lng": LNG0,
        "status": "idle",
        "updated_at": T0,
    }
    fields.update(overrides)
    return CourierLive(**fields)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> Iterator[LiveStore]:
    if request.param == "memory":
        yield MemoryLiveStore(max_age_s=MAX_AGE_S)
        return
    with redis_prefix("live") as (client, prefix):
        yield RedisLiveStore(client, prefix=prefix, max_age_s=MAX_AGE_S)


def test_upserted_courier_can_be_read_back_exactly(store):
    courier = a_courier(lat=52.123456789, lng=13.987654321, status="to_pickup")
    store.upsert(courier)
    assert store.get("cou_1") == courier
    assert store.get("cou_1", now=T0 + 10) == courier


def test_unknown_courier_reads_as_none(store):
    assert store.get("nobody") is None


def test_expired_position_is_never_returned(store):
    store.upsert(a_courier())
    assert store.get("cou_1", now=T0 + MAX_AGE_S) is not None  # the bound itself is fresh
    assert store.get("cou_1", now=T0 + MAX_AGE_S + 0.5) is None
    assert store.all_in_region("berlin", now=T0 + MAX_AGE_S + 0.5) == []
    assert store.nearest("berlin", LAT0, LNG0, 1_000, now=T0 + 500, limit=5) == []
    assert sum(store.count_by_status("berlin", now=T0 + 500).values()) == 0


def test_an_older_write_never_moves_the_courier_back(store):
    newer = a_courier(lat=LAT0 + 0.001, updated_at=T0 + 10)
    store.upsert(newer)
    store.upsert(a_courier(updated_at=T0 + 5))
    assert store.get("cou_1") == newer


def test_a_courier_moving_region_leaves_the_old_one(store):
    store.upsert(a_courier())
    store.upsert(a_courier(region_id="potsdam", updated_at=T0 + 1))
    assert store.all_in_region("berlin", now=T0) == []
    assert [c.region_id for c in store.all_in_region("potsdam", now=T0)] == ["potsdam"]
    assert store.nearest("berlin", LAT0, LNG0, 1_000, now=T0, limit=5) == []


def test_a_write_stamped_before_a_removal_does_not_bring_the_courier_back(store):
    store.upsert(a_courier(updated_at=T0))
    store.remove("cou_1", at=T0 + 5)
    store.upsert(a_courier(updated_at=T0 + 3))  # in flight when the shift ended
    assert store.get("cou_1") is None
    assert store.all_in_region("berlin", now=T0 + 5) == []
    store.upsert(a_courier(updated_at=T0 + 5))  # a new shift's first ping
    assert store.get("cou_1").updated_at == T0 + 5


def test_a_removal_without_a_time_lets_any_later_write_in(store):
    store.upsert(a_courier(updated_at=T0 + 5))
    store.remove("cou_1")
    store.upsert(a_courier(updated_at=T0))
    assert store.get("cou_1").updated_at == T0


def test_removed_courier_is_gone_everywhere(store):
    store.upsert(a_courier())
    store.remove("cou_1")
    store.remove("cou_1")  # idempotent
    assert store.get("cou_1") is None
    assert store.all_in_region("berlin", now=T0) == []
    assert store.nearest("berlin", LAT0, LNG0, 1_000, now=T0, limit=5) == []


def test_nearest_sorts_by_distance_then_courier_id_within_the_radius(store):
    store.upsert_many(
        [
            a_courier(courier_id="cou_far", lat=LAT0 + 0.008),  # ~890 m
            a_courier(courier_id="cou_b", lat=LAT0 + 0.002),  # ~222 m
            a_courier(courier_id="cou_a", lat=LAT0 - 0.002),  # ~222 m, tie broken by id
            a_courier(courier_id="cou_near", lat=LAT0 + 0.0005),  # ~56 m
            a_courier(courier_id="cou_out", lat=LAT0 + 0.02),  # ~2.2 km, outside
            a_courier(courier_id="cou_other_region", region_id="potsdam"),
        ]
    )
    found = store.nearest("berlin", LAT0, LNG0, 1_000, now=T0 + 1, limit=10)
    assert [c.courier_id for c, _ in found] == ["cou_near", "cou_a", "cou_b", "cou_far"]
    # Worked by hand: 6,371,008.8 m x pi/180 = 111,195.08 m per degree of latitude.
    assert [round(d, 1) for _, d in found] == [55.6, 222.4, 222.4, 889.6]


def test_nearest_stops_at_the_limit(store):
    store.upsert_many(a_courier(courier_id=f"cou_{i}", lat=LAT0 + i * 0.001) for i in range(5))
    found = store.nearest("berlin", LAT0, LNG0, 10_000, now=T0, limit=2)
    assert [c.courier_id for c, _ in found] == ["cou_0", "cou_1"]


def test_nearest_keeps_only_the_requested_statuses(store):
    store.upsert_many(
        [
            a_courier(courier_id="cou_idle", status="idle"),
            a_courier(courier_id="cou_busy", status="to_dropoff", lat=LAT0 + 0.0001),
            a_courier(courier_id="cou_off", status="offline", lat=LAT0 + 0.0002),
        ]
    )
    found = store.nearest("berlin", LAT0, LNG0, 500, now=T0, limit=10, statuses={"idle"})
    assert [c.courier_id for c, _ in found] == ["cou_idle"]


def test_nearest_skips_stale_couriers_but_keeps_fresh_ones(store):
    store.upsert(a_courier(courier_id="cou_old", updated_at=T0))
    store.upsert(a_courier(courier_id="cou_new", updated_at=T0 + 100, lat=LAT0 + 0.001))
    found = store.nearest("berlin", LAT0, LNG0, 1_000, now=T0 + 150, limit=10)
    assert [c.courier_id for c, _ in found] == ["cou_new"]


def test_nearest_refuses_a_bad_query(store):
    with pytest.raises(InvalidInput) as err:
        store.nearest("berlin", LAT0, LNG0, 0, now=T0, limit=1)
    assert err.value.field == "radius_m"
    with pytest.raises(InvalidInput) as err:
        store.nearest("berlin", LAT0, LNG0, 100, now=T0, limit=0)
    assert err.value.field == "limit"
    with pytest.raises(InvalidInput) as err:
        store.nearest("berlin", 91.0, LNG0, 100, now=T0, limit=1)
    assert err.value.field == "lat"


def test_all_in_region_lists_fresh_couriers_by_id(store):
    store.upsert_many(
        [
            a_courier(courier_id="cou_2"),
            a_courier(courier_id="cou_1"),
            a_courier(courier_id="cou_3", updated_at=T0 - 500),
        ]
    )
    assert [c.courier_id for c in store.all_in_region("berlin", now=T0)] == ["cou_1", "cou_2"]


def test_count_by_status_names_every_status(store):
    store.upsert_many(
        [
            a_courier(courier_id="cou_1", status="idle"),
            a_courier(courier_id="cou_2", status="idle"),
            a_courier(courier_id="cou_3", status="at_pickup"),
        ]
    )
    counts = store.count_by_status("berlin", now=T0)
    assert set(counts) == set(COURIER_STATUSES)
    assert (counts["idle"], counts["at_pickup"], counts["offline"]) == (2, 1, 0)


def test_prune_deletes_expired_couriers_in_every_region(store):
    store.upsert_many(
        [
            a_courier(courier_id="cou_old", updated_at=T0),
            a_courier(courier_id="cou_old_p", region_id="potsdam", updated_at=T0),
            a_courier(courier_id="cou_new", updated_at=T0 + 200),
        ]
    )
    assert store.prune(T0 + 250) == 2
    assert store.get("cou_old") is None and store.get("cou_old_p") is None
    assert store.get("cou_new") is not None
    assert store.prune(T0 + 250) == 0


def test_upsert_many_equals_upserting_one_by_one(store):
    couriers = [a_courier(courier_id=f"cou_{i}", lat=LAT0 + i * 0.0003) for i in range(20)]
    store.upsert_many(couriers)
    assert store.all_in_region("berlin", now=T0) == sorted(couriers, key=lambda c: c.courier_id)
    store.upsert_many([])


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "napping"), ("lat", 89.0), ("courier_id", ""), ("region_id", "")],
)
def test_courier_live_refuses_bad_fields(field, value):
    with pytest.raises(InvalidInput) as err:
        a_courier(**{field: value})
    assert err.value.field == field


@pytest.mark.redis
def test_redis_store_leaves_no_keys_behind_after_remove_and_prune():
    client = redis_or_skip()
    prefix = f"test:live:{uuid.uuid4().hex}"
    try:
        store = RedisLiveStore(client, prefix=prefix, max_age_s=MAX_AGE_S)
        store.upsert_many([a_courier(courier_id="cou_1"), a_courier(courier_id="cou_2")])
        store.remove("cou_1")
        store.prune(T0 + 1_000)
        assert list(client.scan_iter(match=f"{prefix}:*")) == []
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
