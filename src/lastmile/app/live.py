"""Live courier positions: the value, the port, and the rules both stores share.

A store keeps the latest position and status of each courier, per region.
Positions older than the store's ``max_age_s`` (default 120 s) have expired:
no read returns them, and ``prune(now)`` deletes them. ``now`` is always passed
in (seconds since the epoch, from the injected clock); stores never read a clock.
Writes are last-write-wins by ``updated_at``: an upsert older than what the
store holds is ignored, so replays and reordered writers cannot move a courier back.
A removal with ``at`` is such a write too: a position stamped before ``at`` (a ping
that was in flight when the shift ended or the courier was banned) cannot bring
the courier back; the mark lasts ``max_age_s``, after which that write is stale anyway.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from lastmile.core.errors import InvalidInput
from lastmile.core.geo import MAX_MERCATOR_LAT, Point

log = logging.getLogger(__name__)

COURIER_STATUSES = ("idle", "to_pickup", "at_pickup", "to_dropoff", "at_dropoff", "offline")

# Positions older than this are not "live": at 10 m/s a courier is 1.2 km away by then.
DEFAULT_MAX_AGE_S = 120.0

# Redis GEO indexes only Web Mercator latitudes; no delivery happens closer to the poles.
MAX_ABS_LAT = MAX_MERCATOR_LAT


@dataclass(frozen=True, slots=True, kw_only=True)
class CourierLive:
    courier_id: str
    region_id: str
    lat: float
    lng: float
    status: str
    updated_at: float

    def __post_init__(self) -> None:
        Point(lat=self.lat, lng=self.lng)
        if abs(self.lat) > MAX_ABS_LAT:
            raise InvalidInput(
                "invalid_lat",
                f"lat must be in [-{MAX_ABS_LAT}, {MAX_ABS_LAT}] (got {self.lat})",
                field="lat",
            )
        for field in ("courier_id", "region_id"):
            value = getattr(self, field)
            if not value:
                raise InvalidInput(
                    f"invalid_{field}",
                    f"{field} must be non-empty (got {value!r})",
                    field=field,
                )
        if self.status not in COURIER_STATUSES:
            raise InvalidInput(
                "invalid_status",
                f"status must be one of {', '.join(COURIER_STATUSES)} (got {self.status!r})",
                field="status",
            )
        if not math.isfinite(self.updated_at):
            raise InvalidInput(
                "invalid_updated_at",
                f"updated_at must be finite (got {self.updated_at})",
                field="updated_at",
            )

    @property
    def point(self) -> Point:
        return Point(lat=self.lat, lng=self.lng)


class LiveStore(Protocol):
    """Latest courier positions by region, with expiry after ``max_age_s``."""

    max_age_s: float

    def upsert(self, courier: CourierLive) -> None:
        """Store the courier's position (moving it between regions if needed); older writes lose."""
        ...

    def upsert_many(self, couriers: Iterable[CourierLive]) -> None:
        """Same as ``upsert`` for each, in one round trip where the store allows."""
        ...

    def get(self, courier_id: str, *, now: float | None = None) -> CourierLive | None:
        """The courier's last position; None if unknown, or if expired at ``now`` when given."""
        ...

    def remove(self, courier_id: str, *, at: float | None = None) -> None:
        """Forget the courier (end of shift); with ``at``, ignore later upserts stamped before
        ``at`` (see the module doc). Removing an unknown courier is a no-op."""
        ...

    def nearest(
        self,
        region_id: str,
        lat: float,
        lng: float,
        radius_m: float,
        *,
        now: float,
        limit: int,
        statuses: Collection[str] | None = None,
    ) -> list[tuple[CourierLive, float]]:
        """Fresh couriers within ``radius_m`` (great-circle), as (courier, distance_m).

        Sorted by distance then courier_id; at most ``limit``; only the given
        statuses when ``statuses`` is not None.
        """
        ...

    def all_in_region(self, region_id: str, *, now: float) -> list[CourierLive]:
        """Fresh couriers of the region, sorted by courier_id."""
        ...

    def count_by_status(self, region_id: str, *, now: float) -> dict[str, int]:
        """Fresh couriers of the region per status; every known status is a key."""
        ...

    def prune(self, now: float) -> int:
        """Delete every expired courier; return how many were deleted."""
        ...


def is_fresh(courier: CourierLive, *, now: float, max_age_s: float) -> bool:
    """A position is live while ``updated_at >= now - max_age_s`` (future stamps are fresh).

    Written as a cut-off on ``updated_at`` so every store compares the same
    two floats (Redis keeps ``updated_at`` as a sorted-set score).
    """
    return courier.updated_at >= now - max_age_s


def check_query(*, lat: float, lng: float, radius_m: float, limit: int) -> Point:
    """Validate a nearest-query; return its centre. Raises InvalidInput naming the field."""
    center = Point(lat=lat, lng=lng)
    if not (math.isfinite(radius_m) and radius_m > 0):
        raise InvalidInput(
            "invalid_radius_m", f"radius_m must be > 0 (got {radius_m})", field="radius_m"
        )
    if limit < 1:
        raise InvalidInput("invalid_limit", f"limit must be >= 1 (got {limit})", field="limit")
    return center


def check_max_age(max_age_s: float) -> float:
    if not (math.isfinite(max_age_s) and max_age_s > 0):
        raise InvalidInput(
            "invalid_max_age_s", f"max_age_s must be > 0 (got {max_age_s})", field="max_age_s"
        )
    return max_age_s


def rank_nearest(
    found: Iterable[tuple[CourierLive, float]],
    *,
    limit: int,
    statuses: Collection[str] | None,
) -> list[tuple[CourierLive, float]]:
    """Filter by status, sort by (distance, courier_id), cut at ``limit``; shared by all stores."""
    kept = [(c, d) for c, d in found if statuses is None or c.status in statuses]
    kept.sort(key=lambda pair: (pair[1], pair[0].courier_id))
    return kept[:limit]


def tally_statuses(couriers: Iterable[CourierLive]) -> dict[str, int]:
    counts = dict.fromkeys(COURIER_STATUSES, 0)
    for courier in couriers:
        counts[courier.status] += 1
    return counts


def forget_position(live: LiveStore, courier_id: str, *, at: float) -> bool:
    """Remove the courier's live position after the change that ends their shift committed.

    ``at`` is read after the commit: a ping that loaded the courier before the commit was
    stamped earlier, so its late upsert cannot bring the position back. The live store is
    not part of the unit of work, so it is updated last: a store that fails here must not
    undo the committed change (a ban, an ended shift). The failure is logged and reported
    (False); the position then lapses after ``live.max_age_s``, and dispatch already skips
    the courier because it reads who is on shift from the database.
    """
    try:
        live.remove(courier_id, at=at)
    except Exception:  # noqa: BLE001 - any store failure: logged, reported, never undoes the change
        log.exception("could not remove the live position of courier %s", courier_id)
        return False
    return True
