"""Pickup and drop-off window rules, checked when a delivery is created or changed."""

from __future__ import annotations

from lastmile.core.delivery.model import TimeWindow
from lastmile.core.errors import InvalidInput

# Businesses schedule at most a week ahead; anything further is almost always a unit error.
MAX_HORIZON_S = 7 * 24 * 3600


def validate_windows(
    *,
    pickup: TimeWindow | None,
    dropoff: TimeWindow | None,
    now: float,
    travel_s: float,
) -> None:
    """Raise InvalidInput unless the windows can be honoured.

    Rules: each window ends in the future and starts within ``MAX_HORIZON_S``
    of ``now``; the drop-off window is reachable, i.e. its end is at least
    ``travel_s`` seconds (pickup -> drop-off, handovers included) after the
    earliest pickup (the pickup window's start, or ``now``, whichever is later),
    and it does not end before the pickup window starts. ``start < end`` is
    checked by ``TimeWindow`` itself.
    """
    for name, window in (("pickup_window", pickup), ("dropoff_window", dropoff)):
        if window is None:
            continue
        if window.end_at <= now:
            raise InvalidInput(
                "window_in_past",
                f"{name} must end in the future (end={window.end_at}, now={now})",
                field=f"{name}.end",
            )
        if window.start_at > now + MAX_HORIZON_S:
            raise InvalidInput(
                "window_too_far",
                f"{name} must start within {MAX_HORIZON_S // 86400} days (start={window.start_at})",
                field=f"{name}.start",
            )
    if dropoff is None:
        return
    earliest_pickup = max(now, pickup.start_at if pickup is not None else now)
    earliest_arrival = earliest_pickup + travel_s
    if dropoff.end_at < earliest_arrival:
        raise InvalidInput(
            "dropoff_window_unreachable",
            f"dropoff_window ends at {dropoff.end_at} but the earliest arrival is "
            f"{earliest_arrival:.0f} (pickup at {earliest_pickup:.0f} + {travel_s:.0f} s travel)",
            field="dropoff_window.end",
        )
