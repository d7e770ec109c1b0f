"""In-memory live store for the embedded profile, the simulator and tests."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable

from lastmile.app.live import (
    DEFAULT_MAX_AGE_S,
    CourierLive,
    check_max_age,
    check_query,
    is_fresh,
    rank_nearest,
    tally_statuses,
)
from lastmile.core.geo import bounding_box, haversine_m


class MemoryLiveStore:
    """Dicts behind one lock; ``nearest`` scans the region with a bounding-box pre-filter."""

    def __init__(self, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.max_age_s = check_max_age(max_age_s)
        self._lock = threading.Lock()
        self._couriers: dict[str, CourierLive] = {}
        self._regions: dict[str, set[str]] = {}
        self._removed_at: dict[str, float] = {}  # removals with ``at``: older upserts lose

    def upsert(self, courier: CourierLive) -> None:
        with self._lock:
            self._put(courier)

    def upsert_many(self, couriers: Iterable[CourierLive]) -> None:
        batch = list(couriers)
        with self._lock:
            for courier in batch:
                self._put(courier)

    def get(self, courier_id: str, *, now: float | None = None) -> CourierLive | None:
        with self._lock:
            courier = self._couriers.get(courier_id)
        if courier is None or (now is not None and not self._fresh(courier, now)):
            return None
        return courier

    def remove(self, courier_id: str, *, at: float | None = None) -> None:
        with self._lock:
            self._drop(courier_id)
            if at is not None:
                self._removed_at[courier_id] = max(at, self._removed_at.get(courier_id, at))

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
        center = check_query(lat=lat, lng=lng, radius_m=radius_m, limit=limit)
        min_lat, min_lng, max_lat, max_lng = bounding_box(center, radius_m)
        with self._lock:
            members = [self._couriers[cid] for cid in self._regions.get(region_id, ())]
        found = []
        # Status first, then the box, then freshness: only a few couriers of a big region
        # are idle, and ``rank_nearest`` orders what is kept (no sort of the whole region).
        for courier in members:
            if statuses is not None and courier.status not in statuses:
                continue
            if not (min_lat <= courier.lat <= max_lat and min_lng <= courier.lng <= max_lng):
                continue
            if not self._fresh(courier, now):
                continue
            distance_m = haversine_m(center, courier.point)
            if distance_m <= radius_m:
                found.append((courier, distance_m))
        return rank_nearest(found, limit=limit, statuses=statuses)

    def all_in_region(self, region_id: str, *, now: float) -> list[CourierLive]:
        with self._lock:
            members = [self._couriers[cid] for cid in self._regions.get(region_id, ())]
        return sorted((c for c in members if self._fresh(c, now)), key=lambda c: c.courier_id)

    def count_by_status(self, region_id: str, *, now: float) -> dict[str, int]:
        return tally_statuses(self.all_in_region(region_id, now=now))

    def prune(self, now: float) -> int:
        with self._lock:
            expired = [cid for cid, c in self._couriers.items() if not self._fresh(c, now)]
            for courier_id in expired:
                self._drop(courier_id)
            cutoff = now - self.max_age_s  # a write older than this is stale anyway
            for courier_id in [c for c, at in self._removed_at.items() if at < cutoff]:
                del self._removed_at[courier_id]
        return len(expired)

    def _fresh(self, courier: CourierLive, now: float) -> bool:
        return is_fresh(courier, now=now, max_age_s=self.max_age_s)

    def _put(self, courier: CourierLive) -> None:
        held = self._couriers.get(courier.courier_id)
        if held is not None and held.updated_at > courier.updated_at:
            return  # last write wins by updated_at, not by arrival
        if self._removed_at.get(courier.courier_id, courier.updated_at) > courier.updated_at:
            return  # stamped before the courier was removed: a removal is a write too
        if held is not None:
            self._drop(held.courier_id)
        self._couriers[courier.courier_id] = courier
        self._regions.setdefault(courier.region_id, set()).add(courier.courier_id)

    def _drop(self, courier_id: str) -> None:
        held = self._couriers.pop(courier_id, None)
        if held is None:
            return
        members = self._regions.get(held.region_id)
        if members is not None:
            members.discard(courier_id)
            if not members:
                del self._regions[held.region_id]
