"""The rules that decide which pings move a courier.

A pure fold: ``classify(state, ping, policy) -> (new_state, verdict)``.
Rules, in the order they are applied (the first that fails is the reason):

1. ``banned_device``: a device on the shift's banned list never counts and
   is not tracked; the verdict carries the ``banned_device`` flag.
2. ``too_many_devices``: a new non-main device past
   ``policy.max_other_devices`` is not tracked.
3. ``duplicate``: same device and same ``client_ts`` as that device's last
   in-order ping (retransmissions, at-least-once delivery).
4. ``out_of_order``: ``client_ts`` older than that device's last in-order
   ping.
5. ``impossible_jump``: the implied speed from the device's anchor (last
   plausible fix), net of both accuracy radii, exceeds ``policy.vmax_mps``;
   flagged, and the anchor stays. After ``policy.reanchor_after_pings``
   consecutive jumps that agree with each other, the anchor was the outlier:
   the device re-anchors (flag ``reanchored``) and the ping counts as plausible.
6. ``not_main_device``: only the main device moves the courier. The main
   device is the one that authenticated for the shift. Another device takes
   over (flag ``main_device_switched``) only when all hold: the main device
   has been silent for more than ``policy.main_silence_s`` by server receive
   time; the candidate's last ``policy.switch_after_pings`` pings form a
   plausible chain; the ping is plausible from the courier's last position;
   the ping is not stale. A banned device never takes over (rule 1).
7. ``stale``: received more than ``policy.stale_after_s`` after it was taken.
8. ``low_accuracy``: accuracy radius above ``policy.move_max_accuracy_m``.
9. ``out_of_order`` again: not newer than the courier's current position
   (only possible right after a switch, across device clocks).

Otherwise the ping is ``accepted`` and becomes the courier's position.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from lastmile.core.errors import InvalidInput
from lastmile.core.tracking.ping import Ping, is_plausible_move
from lastmile.core.tracking.policy import TrackingPolicy
from lastmile.core.tracking.state import (
    DeviceTrack,
    PingFlag,
    PingVerdict,
    Reason,
    TrackState,
)


def classify(
    state: TrackState, ping: Ping, policy: TrackingPolicy
) -> tuple[TrackState, PingVerdict]:
    """Apply the rules above to one ping; return the new state and the verdict.

    Raises InvalidInput (``courier_mismatch``) when the ping belongs to another courier.
    """
    state, verdict = _classify(state, ping, policy)
    return state.counted(verdict.reason), verdict


def _classify(
    state: TrackState, ping: Ping, policy: TrackingPolicy
) -> tuple[TrackState, PingVerdict]:
    """``classify`` without the count of the verdict's reason (no rule reads the counts)."""
    if ping.courier_id != state.courier_id:
        raise InvalidInput(
            "courier_mismatch",
            f"ping for courier {ping.courier_id} classified against the track of "
            f"{state.courier_id}",
            field="courier_id",
        )
    was_main = ping.device_id == state.main_device_id
    refusal = _refusal(state, ping, policy)
    if refusal is not None:
        flags = frozenset({PingFlag.BANNED_DEVICE}) if refusal is Reason.BANNED_DEVICE else None
        return _dropped(state, ping, refusal, is_main=was_main, flags=flags or frozenset())
    silent_s = ping.received_ts - state.main_last_heard_at()
    track, plausible, flags = _advance(state.device(ping.device_id), ping, policy)
    # The rules below read only ``state.position``, which the new track and a switch leave
    # as it is: the new state is built once, at the end (``replace`` per change cost 40 %
    # of classifying, profiled).
    main_device_id, switches = state.main_device_id, state.switches
    if not was_main and _takes_over(state, track, ping, plausible, silent_s, policy):
        main_device_id, switches = ping.device_id, switches + 1
        flags |= {PingFlag.MAIN_DEVICE_SWITCHED}
    is_main = ping.device_id == main_device_id
    reason = _reason(state, ping, plausible=plausible, is_main=is_main, policy=policy)
    accepted = reason is Reason.ACCEPTED
    state = TrackState(
        courier_id=state.courier_id, main_device_id=main_device_id,
        shift_started_at=state.shift_started_at, banned_device_ids=state.banned_device_ids,
        devices=(*(d for d in state.devices if d.device_id != track.device_id), track),
        position=ping if accepted else state.position, switches=switches, counts=state.counts)
    verdict = PingVerdict(
        ping=ping,
        is_from_main_device=is_main,
        accepted=accepted,
        reason=reason,
        flags=frozenset(flags),
        main_device_id=state.main_device_id,
    )
    return state, verdict


def classify_batch(
    state: TrackState, pings: Iterable[Ping], policy: TrackingPolicy
) -> tuple[TrackState, tuple[PingVerdict, ...]]:
    """Classify a batch (e.g. pings a phone buffered while offline).

    Sorts by ``client_ts`` (ties by ``received_ts`` then ``device_id``, so the
    result does not depend on arrival order) and folds :func:`classify`.
    Verdicts come back in that sorted order. The reasons are counted once for the batch
    (the same counts as folding ``classify``; a new tuple per ping cost a third of it).
    """
    ordered = sorted(pings, key=lambda p: (p.client_ts, p.received_ts, p.device_id))
    verdicts: list[PingVerdict] = []
    for ping in ordered:
        state, verdict = _classify(state, ping, policy)
        verdicts.append(verdict)
    return state.counted_many(Counter(v.reason.value for v in verdicts)), tuple(verdicts)


def _refusal(state: TrackState, ping: Ping, policy: TrackingPolicy) -> Reason | None:
    """Rules 1-4: reasons to drop a ping without touching any device's trail."""
    if ping.device_id in state.banned_device_ids:
        return Reason.BANNED_DEVICE
    track = state.device(ping.device_id)
    if track is None:
        others = [d for d in state.devices if d.device_id != state.main_device_id]
        if ping.device_id != state.main_device_id and len(others) >= policy.max_other_devices:
            return Reason.TOO_MANY_DEVICES
        return None
    if ping.client_ts == track.last_ping.client_ts:
        return Reason.DUPLICATE
    if ping.client_ts < track.last_ping.client_ts:
        return Reason.OUT_OF_ORDER
    return None


def _advance(
    track: DeviceTrack | None, ping: Ping, policy: TrackingPolicy
) -> tuple[DeviceTrack, bool, frozenset[PingFlag]]:
    """Rule 5: move the device's trail; return it, whether the ping is plausible, and flags."""
    if track is None:
        return DeviceTrack(device_id=ping.device_id, last_ping=ping, anchor=ping), True, frozenset()
    device = track.device_id
    if is_plausible_move(track.anchor, ping, policy):
        moved = DeviceTrack(device_id=device, last_ping=ping, anchor=ping,
                            streak=track.streak + 1, jump_streak=0)
        return moved, True, frozenset()
    chained = track.jump_streak > 0 and is_plausible_move(track.last_ping, ping, policy)
    jumps = track.jump_streak + 1 if chained else 1
    if jumps >= policy.reanchor_after_pings:
        moved = DeviceTrack(device_id=device, last_ping=ping, anchor=ping, streak=jumps,
                            jump_streak=0)
        return moved, True, frozenset({PingFlag.REANCHORED})
    jumped = DeviceTrack(device_id=device, last_ping=ping, anchor=track.anchor, streak=0,
                         jump_streak=jumps)
    return jumped, False, frozenset({PingFlag.IMPOSSIBLE_JUMP})


def _takes_over(
    state: TrackState,
    track: DeviceTrack,
    ping: Ping,
    plausible: bool,
    silent_s: float,
    policy: TrackingPolicy,
) -> bool:
    """Rule 6: may this non-main device become the main device with this ping?"""
    return (
        plausible
        and silent_s > policy.main_silence_s
        and track.streak >= policy.switch_after_pings
        and not _is_stale(ping, policy)
        and (state.position is None or is_plausible_move(state.position, ping, policy))
    )


def _reason(
    state: TrackState, ping: Ping, *, plausible: bool, is_main: bool, policy: TrackingPolicy
) -> Reason:
    """Rules 5-9 for a ping that was not refused outright."""
    if not plausible:
        return Reason.IMPOSSIBLE_JUMP
    if not is_main:
        return Reason.NOT_MAIN_DEVICE
    if _is_stale(ping, policy):
        return Reason.STALE
    if ping.accuracy_m > policy.move_max_accuracy_m:
        return Reason.LOW_ACCURACY
    if state.position is not None and ping.client_ts <= state.position.client_ts:
        return Reason.OUT_OF_ORDER
    return Reason.ACCEPTED


def _is_stale(ping: Ping, policy: TrackingPolicy) -> bool:
    return ping.received_ts - ping.client_ts > policy.stale_after_s


def _dropped(
    state: TrackState,
    ping: Ping,
    reason: Reason,
    *,
    is_main: bool,
    flags: frozenset[PingFlag],
) -> tuple[TrackState, PingVerdict]:
    verdict = PingVerdict(
        ping=ping,
        is_from_main_device=is_main,
        accepted=False,
        reason=reason,
        flags=flags,
        main_device_id=state.main_device_id,
    )
    return state, verdict
