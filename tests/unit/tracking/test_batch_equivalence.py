"""A batch is classified exactly as folding ``classify`` over its sorted pings: the same
verdicts and the same final state, counts included (the batch counts them once)."""

from dataclasses import fields

from hypothesis import given, settings

from lastmile.core.tracking import DeviceTrack, TrackState, classify, classify_batch

from .builders import POLICY
from .test_tracking_properties import _start, streams


@settings(max_examples=300, deadline=None)
@given(streams())
def test_a_batch_ends_in_the_state_and_verdicts_of_classifying_one_ping_at_a_time(stream):
    batch_state, batch_verdicts = classify_batch(_start(), stream, POLICY)
    state, verdicts = _start(), []
    for ping in sorted(stream, key=lambda p: (p.client_ts, p.received_ts, p.device_id)):
        state, verdict = classify(state, ping, POLICY)
        verdicts.append(verdict)
    assert batch_verdicts == tuple(verdicts)
    assert batch_state == state
    assert sum(n for _, n in batch_state.counts) == len(stream)


def test_classify_builds_every_field_of_the_state_and_the_device_track():
    """``classify`` builds TrackState and DeviceTrack field by field (faster than
    ``replace``): a new field must be added there too, or this fails."""
    assert [f.name for f in fields(TrackState)] == [
        "courier_id", "main_device_id", "shift_started_at", "banned_device_ids", "devices",
        "position", "switches", "counts"]
    assert [f.name for f in fields(DeviceTrack)] == [
        "device_id", "last_ping", "anchor", "streak", "jump_streak"]
