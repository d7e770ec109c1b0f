"""Location ingestion rules: validate pings, pick the main device, move the courier.

Pure: no I/O, no clock (``received_ts`` and ``started_at`` are passed in).
The rules, each with its reason, are in ``classify.py`` and ``docs/tracking.md``.
"""

from lastmile.core.tracking.classify import classify, classify_batch
from lastmile.core.tracking.ping import Ping, implied_speed_mps, is_plausible_move, validate_ping
from lastmile.core.tracking.policy import TrackingPolicy
from lastmile.core.tracking.state import (
    DeviceTrack,
    PingFlag,
    PingVerdict,
    Reason,
    TrackState,
    start_track,
)

__all__ = [
    "DeviceTrack",
    "Ping",
    "PingFlag",
    "PingVerdict",
    "Reason",
    "TrackState",
    "TrackingPolicy",
    "classify",
    "classify_batch",
    "implied_speed_mps",
    "is_plausible_move",
    "start_track",
    "validate_ping",
]
