"""Live store on Redis (scale-out profile).

Keys, all under a configurable ``prefix`` (tests use a unique one each):

- ``{prefix}:geo:{region_id}``   GEO set (courier_id -> lng/lat) for GEOSEARCH;
- ``{prefix}:seen:{region_id}``  sorted set courier_id -> updated_at, for expiry;
- ``{prefix}:courier:{id}``      hash: region_id, lat, lng, status, updated_at
                                 (exact floats; the GEO set rounds to ~0.6 m);
- ``{prefix}:regions``           set of region ids, so ``prune`` can find them;
- ``{prefix}:removed:{id}``      when a removal with ``at`` happened (older upserts lose),
                                 expiring after ``max_age_s``.

Writes and expiry run as Lua scripts, so a courier moving between regions
or expiring never leaves half-written keys. The scripts build the old
region's key names from the prefix, so they need one Redis (or a hash tag
in the prefix), not a cluster spread over slots.
Distances are recomputed with the same haversine as the memory store from
the exact coordinates, so both stores answer the same queries identically.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, TypedDict

import redis

from lastmile.app.live import (
    DEFAULT_MAX_AGE_S,
    CourierLive,
    check_max_age,
    check_query,
    is_fresh,
    rank_nearest,
    tally_statuses,
)
from lastmile.core.geo import haversine_m

_UPSERT = """
local held = redis.call('HMGET', KEYS[1], 'region_id', 'updated_at')
if held[2] and tonumber(held[2]) > tonumber(ARGV[7]) then return 0 end
local removed = redis.call('GET', KEYS[5])
if removed and tonumber(removed) > tonumber(ARGV[7]) then return 0 end
if held[1] and held[1] ~= ARGV[3] then
  redis.call('ZREM', ARGV[1] .. ':geo:' .. held[1], ARGV[2])
  redis.call('ZREM', ARGV[1] .. ':seen:' .. held[1], ARGV[2])
end
redis.call('GEOADD', KEYS[2], ARGV[5], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[1], 'region_id', ARGV[3], 'lat', ARGV[4], 'lng', ARGV[5],
           'status', ARGV[6], 'updated_at', ARGV[7])
return 1
"""

# KEYS: courier hash, removed mark. ARGV: prefix, courier_id, at ('' for none), mark ttl in ms.
_REMOVE = """
local region = redis.call('HGET', KEYS[1], 'region_id')
if region then
  redis.call('ZREM', ARGV[1] .. ':geo:' .. region, ARGV[2])
  redis.call('ZREM', ARGV[1] .. ':seen:' .. region, ARGV[2])
end
if ARGV[3] ~= '' then
  local before = redis.call('GET', KEYS[2])
  if not before or tonumber(before) < tonumber(ARGV[3]) then
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  end
end
return redis.call('DEL', KEYS[1])
"""

# KEYS: geo, seen, regions. ARGV: prefix, region_id, cutoff (stale when updated_at < cutoff).
_PRUNE = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3])
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  local hkey = ARGV[1] .. ':courier:' .. id
  if redis.call('HGET', hkey, 'region_id') == ARGV[2] then redis.call('DEL', hkey) end
end
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return #stale
"""

# GEOSEARCH measures on Redis' own sphere and rounded coordinates; search a little wider
# and keep only what the shared haversine puts inside the radius.
_SEARCH_SLACK = 1.001
_SEARCH_SLACK_M = 1.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _ScriptCall(TypedDict):
    """The ``keys`` and ``args`` of a Lua script call, passed as ``**call``."""

    keys: list[str]
    args: list[str]


class RedisLiveStore:
    """Redis GEO implementation of ``lastmile.app.live.LiveStore``."""

    def __init__(
        self, client: redis.Redis, *, prefix: str, max_age_s: float = DEFAULT_MAX_AGE_S
    ) -> None:
        self.max_age_s = check_max_age(max_age_s)
        self._client = client
        self._prefix = prefix
        self._upsert = client.register_script(_UPSERT)
        self._remove = client.register_script(_REMOVE)
        self._prune = client.register_script(_PRUNE)

    # --- keys -------------------------------------------------------------
    def _geo(self, region_id: str) -> str:
        return f"{self._prefix}:geo:{region_id}"

    def _seen(self, region_id: str) -> str:
        return f"{self._prefix}:seen:{region_id}"

    def _hash(self, courier_id: str) -> str:
        return f"{self._prefix}:courier:{courier_id}"

    def _removed(self, courier_id: str) -> str:
        return f"{self._prefix}:removed:{courier_id}"

    @property
    def _regions(self) -> str:
        return f"{self._prefix}:regions"

    # --- writes -----------------------------------------------------------
    def upsert(self, courier: CourierLive) -> None:
        self._upsert(**self._upsert_call(courier))

    def upsert_many(self, couriers: Iterable[CourierLive]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for courier in couriers:
            self._upsert(**self._upsert_call(courier), client=pipe)
        pipe.execute()

    def _upsert_call(self, c: CourierLive) -> _ScriptCall:
        keys = [
            self._hash(c.courier_id),
            self._geo(c.region_id),
            self._seen(c.region_id),
            self._regions,
            self._removed(c.courier_id),
        ]
        args = [
            self._prefix,
            c.courier_id,
            c.region_id,
            repr(c.lat),
            repr(c.lng),
            c.status,
            repr(c.updated_at),
        ]
        return {"keys": keys, "args": args}

    def remove(self, courier_id: str, *, at: float | None = None) -> None:
        ttl_ms = max(1, round(self.max_age_s * 1000))
        self._remove(keys=[self._hash(courier_id), self._removed(courier_id)],
                     args=[self._prefix, courier_id, "" if at is None else repr(at), ttl_ms])

    def prune(self, now: float) -> int:
        regions = sorted(_text(r) for r in self._client.smembers(self._regions))
        return sum(self._prune_region(region_id, now) for region_id in regions)

    def _prune_region(self, region_id: str, now: float) -> int:
        keys = [self._geo(region_id), self._seen(region_id), self._regions]
        cutoff = now - self.max_age_s
        return int(self._prune(keys=keys, args=[self._prefix, region_id, repr(cutoff)]))

    # --- reads ------------------------------------------------------------
    def get(self, courier_id: str, *, now: float | None = None) -> CourierLive | None:
        courier = self._parse(courier_id, self._client.hgetall(self._hash(courier_id)))
        if courier is None or (now is not None and not self._fresh(courier, now)):
            return None
        return courier

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
        self._prune_region(region_id, now)
        hits = self._client.geosearch(
            self._geo(region_id),
            longitude=lng,
            latitude=lat,
            radius=radius_m * _SEARCH_SLACK + _SEARCH_SLACK_M,
            unit="m",
            sort="ASC",
            withcoord=True,
            withdist=True,
        )
        found = []
        for courier in self._load([_text(hit[0]) for hit in hits], now):
            distance_m = haversine_m(center, courier.point)
            if distance_m <= radius_m:
                found.append((courier, distance_m))
        return rank_nearest(found, limit=limit, statuses=statuses)

    def all_in_region(self, region_id: str, *, now: float) -> list[CourierLive]:
        self._prune_region(region_id, now)
        ids = self._client.zrangebyscore(self._seen(region_id), now - self.max_age_s, "+inf")
        couriers = self._load([_text(i) for i in ids], now)
        return sorted((c for c in couriers if c.region_id == region_id), key=lambda c: c.courier_id)

    def count_by_status(self, region_id: str, *, now: float) -> dict[str, int]:
        return tally_statuses(self.all_in_region(region_id, now=now))

    def _load(self, courier_ids: list[str], now: float) -> list[CourierLive]:
        """Read the hashes of ``courier_ids`` in one round trip; keep the fresh ones."""
        pipe = self._client.pipeline(transaction=False)
        for courier_id in courier_ids:
            pipe.hgetall(self._hash(courier_id))
        loaded = (
            self._parse(cid, raw) for cid, raw in zip(courier_ids, pipe.execute(), strict=True)
        )
        return [c for c in loaded if c is not None and self._fresh(c, now)]

    def _fresh(self, courier: CourierLive, now: float) -> bool:
        return is_fresh(courier, now=now, max_age_s=self.max_age_s)

    @staticmethod
    def _parse(courier_id: str, raw: dict[Any, Any]) -> CourierLive | None:
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return CourierLive(
            courier_id=courier_id,
            region_id=fields["region_id"],
            lat=float(fields["lat"]),
            lng=float(fields["lng"]),
            status=fields["status"],
            updated_at=float(fields["updated_at"]),
        )
