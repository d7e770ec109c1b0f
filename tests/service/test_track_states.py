"""Per-shift tracking state: same contract in memory and in Redis; concurrent steps never
lose an update; the JSON codec round-trips every field."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from databases import redis_prefix
from lastmile.adapters.live.track_states import RedisTrackStates, state_from_json, state_to_json
from lastmile.app.tracking import MemoryTrackStates, TrackStates
from lastmile.core.tracking import TrackingPolicy, classify, start_track, validate_ping

POLICY = TrackingPolicy()


def _ping(device: str, ts: float, dlat: float = 0.0):
    return validate_ping(courier_id="cou_1", device_id=device, lat=37.44 + dlat, lng=-122.14,
                         accuracy_m=10.0, client_ts=ts, received_ts=ts, speed_mps=3.0,
                         heading_deg=90.0, policy=POLICY)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def states(request: pytest.FixtureRequest) -> Iterator[TrackStates]:
    if request.param == "memory":
        yield MemoryTrackStates()
        return
    with redis_prefix("track") as (client, prefix):
        yield RedisTrackStates(client, prefix=prefix)


def _step(ts: float):
    def step(state):
        if state is None:
            state = start_track(courier_id="cou_1", main_device_id="main", started_at=0.0)
        return classify(state, _ping("main", ts, dlat=ts * 1e-6), POLICY)
    return step


def test_unknown_shift_has_no_state(states):
    assert states.get("shf_none") is None


def test_transact_starts_and_then_advances_the_state(states):
    first = states.transact("shf_1", _step(1000.0))
    second = states.transact("shf_1", _step(1005.0))
    assert first.accepted and second.accepted
    assert states.get("shf_1").position.client_ts == 1005.0


def test_concurrent_transactions_lose_no_ping(states):
    timestamps = [1000.0 + i for i in range(40)]
    barrier = threading.Barrier(4)

    def worker(chunk):
        barrier.wait()
        for ts in chunk:
            states.transact("shf_2", _step(ts))

    threads = [threading.Thread(target=worker, args=(timestamps[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = states.get("shf_2")
    total = sum(n for _, n in final.counts)
    assert total == len(timestamps)


def test_state_codec_round_trips_every_field():
    state = start_track(courier_id="cou_1", main_device_id="main", started_at=5.0,
                        banned_device_ids=frozenset({"bad"}))
    for ts, device in ((1000.0, "main"), (1001.0, "other"), (1002.0, "main")):
        state, _ = classify(state, _ping(device, ts), POLICY)
    state = replace(state, switches=2)
    assert state_from_json(state_to_json(state)) == state


def test_a_step_that_raises_leaves_the_state_as_it_was(states):
    # app.tracking builds the live position inside the step so that an invalid one aborts
    # the whole batch: this is the store half of that promise.
    states.transact("shf_1", _step(1.0))
    before = states.get("shf_1")

    def failing(state):
        classify(state, _ping("main", 2.0), POLICY)
        raise ValueError("position cannot be stored")

    with pytest.raises(ValueError):
        states.transact("shf_1", failing)
    assert states.get("shf_1") == before
    assert states.transact("shf_1", _step(2.0)).accepted
