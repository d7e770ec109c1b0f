"""Per-shift tracking state in Redis, for several API processes (scale-out profile).

Each shift's ``TrackState`` is one JSON value under ``<prefix>track:<shift id>``,
expiring a day after its last write. ``transact`` runs the pure step on the value
read and writes the result with a compare-and-set script (optimistic): if another
process wrote the state meanwhile, the step runs again on the new state, so no
ping's effect is lost.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import redis

from lastmile.app.tracking import Step
from lastmile.core.tracking import DeviceTrack, Ping, TrackState

R = TypeVar("R")
# KEYS: the state. ARGV: '1' when a value was read ('0': none was), that value, the new
# value, its TTL in seconds. Sets and returns 1 only if the key still holds what was read.
_CAS = """
local held = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if held then return 0 end
elseif held ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return 1
"""
TTL_S = 24 * 3600
MAX_RETRIES = 20


def ping_to_json(p: Ping) -> dict[str, Any]:
    return {"courier_id": p.courier_id, "device_id": p.device_id, "lat": p.lat, "lng": p.lng,
            "accuracy_m": p.accuracy_m, "client_ts": p.client_ts, "received_ts": p.received_ts,
            "speed_mps": p.speed_mps, "heading_deg": p.heading_deg}


def ping_from_json(raw: dict[str, Any]) -> Ping:
    return Ping(**raw)


def state_to_json(s: TrackState) -> str:
    return json.dumps({
        "courier_id": s.courier_id, "main_device_id": s.main_device_id,
        "shift_started_at": s.shift_started_at, "banned_device_ids": sorted(s.banned_device_ids),
        "devices": [{"device_id": d.device_id, "last_ping": ping_to_json(d.last_ping),
                     "anchor": ping_to_json(d.anchor), "streak": d.streak,
                     "jump_streak": d.jump_streak} for d in s.devices],
        "position": None if s.position is None else ping_to_json(s.position),
        "switches": s.switches, "counts": [list(c) for c in s.counts],
    })


def state_from_json(text: str | bytes) -> TrackState:
    raw = json.loads(text)
    return TrackState(
        courier_id=raw["courier_id"], main_device_id=raw["main_device_id"],
        shift_started_at=raw["shift_started_at"],
        banned_device_ids=frozenset(raw["banned_device_ids"]),
        devices=tuple(DeviceTrack(device_id=d["device_id"],
                                  last_ping=ping_from_json(d["last_ping"]),
                                  anchor=ping_from_json(d["anchor"]), streak=d["streak"],
                                  jump_streak=d["jump_streak"]) for d in raw["devices"]),
        position=None if raw["position"] is None else ping_from_json(raw["position"]),
        switches=raw["switches"], counts=tuple((str(k), int(n)) for k, n in raw["counts"]),
    )


class RedisTrackStates:
    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int = TTL_S):
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._cas = client.register_script(_CAS)

    def _key(self, shift_id: str) -> str:
        return f"{self._prefix}track:{shift_id}"

    def get(self, shift_id: str) -> TrackState | None:
        raw = self._client.get(self._key(shift_id))
        return None if raw is None else state_from_json(raw)

    def transact(self, shift_id: str, step: Step[R]) -> R:
        """GET, step, then a compare-and-set script: two round trips (WATCH/GET/MULTI-EXEC
        took three). The script writes only if the value is still the one the step read;
        otherwise the step runs again on the new value."""
        key = self._key(shift_id)
        for _ in range(MAX_RETRIES):
            raw = self._client.get(key)
            state, result = step(None if raw is None else state_from_json(raw))
            expected = [b"0", b""] if raw is None else [b"1", raw]
            if self._cas(keys=[key], args=[*expected, state_to_json(state), self._ttl_s]):
                return result
        raise RuntimeError(f"tracking state of shift {shift_id} kept changing; gave up after "
                           f"{MAX_RETRIES} tries")
