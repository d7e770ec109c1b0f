"""Thresholds of the location-ingestion rules, each with its reason.

Built once from settings and passed into the pure functions; nothing here
reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from lastmile.core.errors import InvalidInput


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackingPolicy:
    # --- validation (a ping breaking these is rejected with InvalidInput) ---
    # A reported accuracy radius above 5 km is not a GPS fix but a cell-tower or IP guess.
    max_accuracy_m: float = 5_000.0
    # 90 m/s (324 km/h) is beyond any courier vehicle: a reported speed above it is a bad sensor.
    max_speed_mps: float = 90.0
    # Device ids are opaque install ids; a bound keeps state and keys small.
    max_device_id_len: int = 128
    # Phone clocks drift; 30 s of skew is tolerated, more means a wrong or forged clock.
    max_future_s: float = 30.0
    # Phones buffer pings while offline; older than an hour they no longer describe a shift.
    max_age_s: float = 3_600.0

    # --- classification (a valid ping that breaks these does not move the courier) ---
    # 50 m/s (180 km/h) implied between two fixes, after subtracting both accuracy radii,
    # is a teleport (GPS glitch or spoofing), not a courier on a motorway.
    vmax_mps: float = 50.0
    # Fixes closer than 1 s apart give wild implied speeds; divide by at least this.
    min_dt_s: float = 1.0
    # Only fixes this accurate move the courier: dispatch distances need ~block precision.
    move_max_accuracy_m: float = 150.0
    # A ping that reaches us more than 60 s after it was taken would move the live position
    # backwards in time; it is kept for the device trail but does not move the courier.
    stale_after_s: float = 60.0
    # The main device must have been silent (by server receive time, which a device cannot
    # forge) this long before another device may take over.
    main_silence_s: float = 60.0
    # A candidate device must send this many consecutive mutually plausible pings before it
    # takes over: one ping from an accidentally opened app is not enough.
    switch_after_pings: int = 3
    # After this many consecutive pings that agree with each other but not with the anchor,
    # the anchor was the outlier: re-anchor instead of flagging the device forever.
    reanchor_after_pings: int = 3
    # Devices tracked per shift besides the main one: ~10% of couriers use more than one
    # device (seed 004), rarely more than two; many more is abuse, and the bound keeps the
    # state small. The main device is never refused by this cap.
    max_other_devices: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise InvalidInput(
                    "invalid_policy",
                    f"tracking policy {f.name} must be > 0 (got {value})",
                    field=f.name,
                )
