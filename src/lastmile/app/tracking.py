"""Location ingestion: validate pings, keep the shift's main device, move the courier.

Only accepted main-device pings reach the live store and the ``courier.moved``
stream. Bad pings are refused whole-batch and counted, and nothing is half-stored:
every ping is validated (including what the live store can hold) before the
tracking state moves, and the new live position is built inside the state's step,
so a position that cannot be stored aborts the step and leaves the state as it was.
The live store and the stream come after the state: they only ever show a position
the state accepted.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypedDict, TypeVar

from lastmile.app.context import Services, new_event
from lastmile.app.events import Event
from lastmile.app.live import CourierLive, LiveStore
from lastmile.app.ports import Publisher
from lastmile.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from lastmile.core.model import Courier
from lastmile.core.orders import OrderStatus
from lastmile.core.tracking import (
    Ping,
    PingVerdict,
    TrackingPolicy,
    TrackState,
    classify_batch,
    start_track,
    validate_ping,
)

MAX_BATCH = 500
_STATUS_OF_ORDER = {
    OrderStatus.ASSIGNED: "to_pickup",
    OrderStatus.AT_PICKUP: "at_pickup",
    OrderStatus.PICKED_UP: "to_dropoff",
    OrderStatus.AT_DROPOFF: "at_dropoff",
}


R = TypeVar("R")
Step = Callable[[TrackState | None], tuple[TrackState, R]]


class TrackStates(Protocol):
    """Per-shift tracking state; ``transact`` reads, steps and writes one shift's state
    atomically, so two API processes never lose each other's pings."""

    def get(self, shift_id: str) -> TrackState | None: ...
    def transact(self, shift_id: str, step: Step[R]) -> R: ...


class MemoryTrackStates:
    """Per-shift tracking state in this process (embedded profile)."""

    def __init__(self) -> None:
        self._states: dict[str, TrackState] = {}
        self._lock = threading.Lock()

    def get(self, shift_id: str) -> TrackState | None:
        with self._lock:
            return self._states.get(shift_id)

    def transact(self, shift_id: str, step: Step[R]) -> R:
        with self._lock:
            state, result = step(self._states.get(shift_id))
            self._states[shift_id] = state
            return result


@dataclass(slots=True, kw_only=True)
class Tracking:
    services: Services
    live: LiveStore
    states: TrackStates
    publisher: Publisher
    policy: TrackingPolicy = field(default_factory=TrackingPolicy)
    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    verdicts: tuple[PingVerdict, ...]
    position: CourierLive | None

    @property
    def accepted(self) -> int:
        return sum(1 for v in self.verdicts if v.accepted)


class _PingError(TypedDict):
    index: int
    field: str
    code: str
    message: str


def _validate_all(
    t: Tracking, courier_id: str, raw: Sequence[Mapping[str, Any]], now: float
) -> list[Ping]:
    if not 1 <= len(raw) <= MAX_BATCH:
        raise InvalidInput(
            "invalid_batch_size",
            f"send 1..{MAX_BATCH} pings per request (got {len(raw)})",
            field="pings",
        )
    pings: list[Ping] = []
    errors: list[_PingError] = []
    for i, r in enumerate(raw):
        try:
            pings.append(
                validate_ping(
                    courier_id=courier_id,
                    device_id=r.get("device_id"),
                    lat=r.get("lat"),
                    lng=r.get("lng"),
                    accuracy_m=r.get("accuracy_m"),
                    client_ts=r.get("client_ts"),
                    speed_mps=r.get("speed_mps"),
                    heading_deg=r.get("heading_deg"),
                    received_ts=now,
                    policy=t.policy,
                )
            )
        except InvalidInput as exc:
            errors.append(
                {
                    "index": i,
                    "field": f"pings[{i}]" + (f".{exc.field}" if exc.field else ""),
                    "code": exc.code,
                    "message": exc.message,
                }
            )
    if errors:
        t.count("rejected_invalid", len(errors))
        first = errors[0]
        raise InvalidInput(
            first["code"],
            f"{len(errors)} of {len(raw)} pings are invalid; first: {first['message']}",
            field=first["field"],
            errors=errors,
        )
    return pings


def _require_shift(courier: Courier) -> tuple[str, str]:
    if courier.shift_id is None or courier.device_id is None:
        raise Conflict(
            "not_on_shift",
            f"courier {courier.id} is not on shift; start a shift before sending locations",
            current_state=courier.status.value,
        )
    return courier.shift_id, courier.device_id


Classified = tuple[tuple[PingVerdict, ...], CourierLive | None]


def _classify_step(t: Tracking, courier: Courier, pings: list[Ping], banned: frozenset[str],
                   *, status: str, now: float) -> Step[Classified]:
    """The pure step applied to the stored state: start it if new, add bans, classify, and
    build the new live position (raising before the state is written if it is invalid)."""
    _, main_device = _require_shift(courier)

    def step(state: TrackState | None) -> tuple[TrackState, Classified]:
        if state is None:
            state = start_track(courier_id=courier.id, main_device_id=main_device,
                                started_at=courier.shift_started_at or 0.0)
        if not banned <= state.banned_device_ids:
            # A ban takes effect on the next batch, even mid-shift (rule 1 of the classifier).
            state = replace(state, banned_device_ids=state.banned_device_ids | banned)
        state, verdicts = classify_batch(state, pings, t.policy)
        moved = [v.ping for v in verdicts if v.accepted]
        position = None if not moved else CourierLive(
            courier_id=courier.id, region_id=courier.region_id, lat=moved[-1].lat,
            lng=moved[-1].lng, status=status, updated_at=now)
        return state, (verdicts, position)

    return step


def _live_status(courier: Courier, first: OrderStatus | None) -> str:
    """The courier's live status from the first order in hand (idle with none)."""
    if not courier.active_order_ids or first is None:
        return "idle"
    return _STATUS_OF_ORDER.get(first, "idle")


def ingest_pings(t: Tracking, *, courier_id: str, raw: Sequence[Mapping[str, Any]]) -> IngestResult:
    """Classify a batch of raw pings from ``courier_id``'s devices and move the courier.

    Refused whole (nothing stored) when a ping is invalid, the courier is banned or off shift.
    """
    now = t.services.clock.now()
    pings = _validate_all(t, courier_id, raw, now)
    devices = {p.device_id for p in pings}
    with t.services.uow(read_only=True) as uow:
        # One read for the common batch (no banned device); the banned set only when one is.
        view = uow.couriers.for_ping(courier_id, devices)
        if view is None:
            raise NotFound("courier_not_found", f"no courier {courier_id}", field="courier_id")
        banned = uow.banned_devices.among(devices) if view.any_banned else frozenset()
    courier = view.courier
    status = _live_status(courier, view.first_order_status)
    if courier.banned:
        raise Forbidden("courier_banned", f"courier {courier_id} is banned; locations are refused")
    shift_id, _ = _require_shift(courier)
    verdicts, position = t.states.transact(
        shift_id, _classify_step(t, courier, pings, banned, status=status, now=now))
    for v in verdicts:
        t.count(v.reason.value)
    if position is not None:
        _move(t, courier, position, next(v.ping for v in reversed(verdicts) if v.accepted))
    return IngestResult(verdicts=verdicts, position=position)


def _move(t: Tracking, courier: Courier, position: CourierLive, last: Ping) -> None:
    """Store the courier's new live position and stream it as ``courier.moved``."""
    t.live.upsert(position)
    _publish_move(t, new_event(
        t.services, type="courier.moved", region_id=courier.region_id, subject_id=courier.id,
        actor_kind="courier", actor_id=courier.id,
        data={"lat": last.lat, "lng": last.lng, "status": position.status,
              "active_order_ids": list(courier.active_order_ids), "is_from_main_device": True,
              "client_ts": last.client_ts}))


def _publish_move(t: Tracking, event: Event) -> None:
    """Moves are a live stream, not a record: a failing subscriber must not fail the ping
    (the position is already stored). The bus logs the failure; here it is counted."""
    try:
        t.publisher.publish(event)
    except Exception:  # noqa: BLE001 - counted and logged by the bus; the next move supersedes it
        t.count("stream_publish_failed")
