"""Per-shift tracking state, the verdict on one ping, and their codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from lastmile.core.errors import Forbidden, InvalidInput
from lastmile.core.tracking.ping import Ping


class Reason(StrEnum):
    """Why a ping did or did not move the courier (stable strings)."""

    ACCEPTED = "accepted"
    BANNED_DEVICE = "banned_device"
    TOO_MANY_DEVICES = "too_many_devices"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    IMPOSSIBLE_JUMP = "impossible_jump"
    NOT_MAIN_DEVICE = "not_main_device"
    STALE = "stale"
    LOW_ACCURACY = "low_accuracy"


class PingFlag(StrEnum):
    """Facts worth a look downstream (fraud, support), independent of the reason."""

    IMPOSSIBLE_JUMP = "impossible_jump"
    BANNED_DEVICE = "banned_device"
    REANCHORED = "reanchored"
    MAIN_DEVICE_SWITCHED = "main_device_switched"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceTrack:
    """What we know of one device during a shift.

    ``last_ping`` is the newest in-order ping (used for duplicate and order
    checks); ``anchor`` is the newest ping that passed the jump check (the
    trusted trail); ``streak`` counts consecutive plausible pings ending at
    the anchor; ``jump_streak`` counts consecutive jumps that agree with each
    other (0 when the last ping is the anchor).
    """

    device_id: str
    last_ping: Ping
    anchor: Ping
    streak: int = 1
    jump_streak: int = 0

    @property
    def last_received_ts(self) -> float:
        return self.last_ping.received_ts


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackState:
    """One courier's tracking state for one shift.

    ``position`` is always the last accepted ping of the main device at the
    time it was accepted (None before the first one).
    ``counts`` holds ``(reason, n)`` pairs sorted by reason.
    """

    courier_id: str
    main_device_id: str
    shift_started_at: float
    banned_device_ids: frozenset[str] = frozenset()
    devices: tuple[DeviceTrack, ...] = ()
    position: Ping | None = None
    switches: int = 0
    counts: tuple[tuple[str, int], ...] = ()

    def device(self, device_id: str) -> DeviceTrack | None:
        return next((d for d in self.devices if d.device_id == device_id), None)

    def count(self, reason: str) -> int:
        return dict(self.counts).get(reason, 0)

    def main_last_heard_at(self) -> float:
        """Server time the main device was last heard from (shift start if never)."""
        main = self.device(self.main_device_id)
        return self.shift_started_at if main is None else main.last_received_ts

    def with_device(self, track: DeviceTrack) -> TrackState:
        others = tuple(d for d in self.devices if d.device_id != track.device_id)
        return replace(self, devices=(*others, track))

    def counted(self, reason: str) -> TrackState:
        return self.counted_many({reason: 1})

    def counted_many(self, added: Mapping[str, int]) -> TrackState:
        """The state with ``added`` (reason -> n) added to its counts."""
        if not added:
            return self
        tally = dict(self.counts)
        for reason, n in added.items():
            tally[str(reason)] = tally.get(str(reason), 0) + n
        return replace(self, counts=tuple(sorted(tally.items())))


@dataclass(frozen=True, slots=True, kw_only=True)
class PingVerdict:
    """The classification of one ping.

    ``accepted`` is True exactly when the ping moved the courier; then
    ``reason`` is ``accepted``. Otherwise ``reason`` is the first rule that
    stopped it. ``main_device_id`` is the main device after this ping.
    """

    ping: Ping
    is_from_main_device: bool
    accepted: bool
    reason: Reason
    flags: frozenset[PingFlag] = frozenset()
    main_device_id: str


def start_track(
    *,
    courier_id: str,
    main_device_id: str,
    started_at: float,
    banned_device_ids: frozenset[str] = frozenset(),
) -> TrackState:
    """State at shift start: the device that authenticated for the shift is the main device.

    Raises Forbidden when that device is banned (a banned device never tracks
    a courier), InvalidInput on empty ids.
    """
    for field, value in (("courier_id", courier_id), ("main_device_id", main_device_id)):
        if not value:
            raise InvalidInput(f"invalid_{field}", f"{field} must be non-empty", field=field)
    if main_device_id in banned_device_ids:
        raise Forbidden(
            "banned_device",
            f"device {main_device_id} is banned and cannot start a shift for {courier_id}",
            field="main_device_id",
        )
    return TrackState(
        courier_id=courier_id,
        main_device_id=main_device_id,
        shift_started_at=started_at,
        banned_device_ids=frozenset(banned_device_ids),
    )
