"""Invariants of the ping rules over arbitrary streams of pings."""

from hypothesis import given, settings
from hypothesis import strategies as st

from lastmile.core.tracking import Ping, classify, classify_batch

from .builders import COURIER, LAT0, LNG0, MAIN, OTHER, POLICY, T0, a_track

BANNED = "dev_banned"
DEVICES = (MAIN, OTHER, "dev_third", BANNED)


@st.composite
def pings(draw: st.DrawFn) -> Ping:
    client_ts = T0 + draw(st.integers(min_value=0, max_value=600))
    return Ping(
        courier_id=COURIER,
        device_id=draw(st.sampled_from(DEVICES)),
        # up to ~1.1 km from the start: slow walks, car moves and jumps all occur
        lat=LAT0 + draw(st.integers(min_value=-10, max_value=10)) * 0.001,
        lng=LNG0 + draw(st.integers(min_value=-10, max_value=10)) * 0.001,
        accuracy_m=draw(st.sampled_from([5.0, 30.0, 200.0])),
        client_ts=float(client_ts),
        received_ts=float(client_ts + draw(st.sampled_from([0, 1, 5, 90]))),
    )


@st.composite
def streams(draw: st.DrawFn) -> list[Ping]:
    """Pings with repeats: replayed messages are common on an at-least-once stream."""
    base = draw(st.lists(pings(), min_size=1, max_size=40))
    repeats = draw(st.lists(st.integers(min_value=0, max_value=len(base) - 1), max_size=10))
    stream = list(base)
    for index in repeats:
        stream.insert(draw(st.integers(min_value=0, max_value=len(stream))), base[index])
    return stream


def _start():
    return a_track(banned_device_ids=frozenset({BANNED}))


@settings(max_examples=300, deadline=None)
@given(streams())
def test_a_non_main_device_never_moves_the_courier_while_the_main_device_is_fresh(stream):
    state = _start()
    for ping in stream:
        main_before = state.main_device_id
        fresh = ping.received_ts - state.main_last_heard_at() <= POLICY.main_silence_s
        state, verdict = classify(state, ping, POLICY)
        if ping.device_id != main_before and fresh:
            assert not verdict.accepted
            assert state.main_device_id == main_before
        assert state.main_device_id != BANNED


@settings(max_examples=300, deadline=None)
@given(streams())
def test_classifying_the_same_ping_twice_never_moves_the_courier_twice(stream):
    state = _start()
    for ping in stream:
        state, _ = classify(state, ping, POLICY)
        position = state.position
        state, again = classify(state, ping, POLICY)
        assert not again.accepted
        assert state.position == position


@settings(max_examples=300, deadline=None)
@given(streams())
def test_a_ping_is_accepted_at_most_once_in_a_stream_with_replays(stream):
    state, verdicts = classify_batch(_start(), stream, POLICY)
    accepted = [(v.ping.device_id, v.ping.client_ts) for v in verdicts if v.accepted]
    assert len(accepted) == len(set(accepted))


@settings(max_examples=300, deadline=None)
@given(streams())
def test_the_position_is_always_the_last_accepted_main_device_ping(stream):
    state = _start()
    accepted: list[Ping] = []
    for ping in stream:
        state, verdict = classify(state, ping, POLICY)
        if verdict.accepted:
            assert verdict.is_from_main_device
            assert ping.device_id == state.main_device_id
            accepted.append(ping)
        assert state.position == (accepted[-1] if accepted else None)
