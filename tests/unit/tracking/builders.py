"""Builders for tracking tests: a sensible default, override what the test is about."""

from __future__ import annotations

from typing import Any

from lastmile.core.tracking import Ping, TrackingPolicy, TrackState, start_track

T0 = 1_700_000_000.0  # an arbitrary epoch second; the core never reads a clock
COURIER = "cou_1"
MAIN = "dev_main"
OTHER = "dev_other"
POLICY = TrackingPolicy()

# ~111 m per 0.001 degree of latitude.
LAT0, LNG0 = 52.5200, 13.4050


def a_ping(**overrides: Any) -> Ping:
    fields: dict[str, Any] = {
        "courier_id": COURIER,
        "device_id": MAIN,
        "lat": LAT0,
        "lng": LNG0,
        "accuracy_m": 10.0,
        "client_ts": T0 + 10,
        "received_ts": T0 + 11,
    }
    fields.update(overrides)
    if "received_ts" not in overrides:
        fields["received_ts"] = fields["client_ts"] + 1
    return Ping(**fields)


def a_track(**overrides: Any) -> TrackState:
    fields: dict[str, Any] = {"courier_id": COURIER, "main_device_id": MAIN, "started_at": T0}
    fields.update(overrides)
    return start_track(**fields)


def raw_ping(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "courier_id": COURIER,
        "device_id": MAIN,
        "lat": LAT0,
        "lng": LNG0,
        "accuracy_m": 10.0,
        "speed_mps": 4.0,
        "heading_deg": 90.0,
        "client_ts": T0,
        "received_ts": T0 + 1,
    }
    fields.update(overrides)
    return fields
