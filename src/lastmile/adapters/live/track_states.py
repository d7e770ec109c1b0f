"""Per-shift tracking state in Redis, for several API processes (scale-out profile).

Each shift's ``TrackState`` is one JSON value under ``<prefix>track:<shift id>``,
expiring a day after its last write. ``transact`` runs the pure step under
WATCH/MULTI (optimistic): if another process wrote the state meanwhile, the
step runs again on the new state, so no ping's effect is lost.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import redis

from lastmile.app.tracking import Step
from lastmile.core.tracking import DeviceTrack, Ping, TrackState

R = TypeVar("R")
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

    def _key(self, shift_id: str) -> str:
        return f"{self._prefix}track:{shift_id}"

    def get(self, shift_id: str) -> TrackState | None:
        raw = self._client.get(self._key(shift_id))
        return None if raw is None else state_from_json(raw)

    def transact(self, shift_id: str, step: Step[R]) -> R:
        key = self._key(shift_id)
        with self._client.pipeline() as pipeline:
            pipe: Any = pipeline  # redis-py leaves Pipeline.watch untyped
            for _ in range(MAX_RETRIES):
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    state, result = step(None if raw is None else state_from_json(raw))
                    pipe.multi()
                    pipe.set(key, state_to_json(state), ex=self._ttl_s)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise RuntimeError(f"tracking state of shift {shift_id} kept changing; gave up after "
                           f"{MAX_RETRIES} tries")
