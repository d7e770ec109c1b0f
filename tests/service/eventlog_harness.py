"""The event bus contract's two engines behind one harness: the in-process bus with the outbox
relay, and NATS JetStream (a unique stream and subject prefix per test, deleted at teardown).

Also the effect the contract counts: a durable handler appends one ``test.effect`` row to the
event history per event it handles, inside the inbox's transaction (``IdempotentHandler``).
Nothing but the inbox stops a redelivery from appending a second row."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lastmile.adapters.bus.jetstream import JetStreamBus
from lastmile.adapters.bus.jetstream_relay import JetStreamRelay
from lastmile.adapters.bus.jetstream_wire import JetStreamConfig
from lastmile.adapters.bus.memory import InProcessBus
from lastmile.adapters.bus.outbox import IdempotentHandler, Relay, RelayPolicy
from lastmile.app.context import Services, new_event, record
from lastmile.app.events import Event
from lastmile.app.ports import UnitOfWork
from lastmile.bootstrap import Container, build
from lastmile.core.webhooks import RetryPolicy
from lastmile.settings import Settings

NATS_URL = "nats://127.0.0.1:4222"
# Waits of 0.05, 0.1, 0.2 s; parked at the 3rd failed attempt: the tests run in real time.
POLICY = RelayPolicy(retry=RetryPolicy(base_s=0.05, cap_s=0.2, max_attempts=3), lease_s=30.0)


def nats_available() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=2):
            return None
    except OSError as exc:
        return f"no NATS answers on 127.0.0.1:4222: {exc.__class__.__name__}"


def unique_config(**overrides: float) -> JetStreamConfig:
    tag = uuid.uuid4().hex[:12]
    return JetStreamConfig(url=NATS_URL, stream=f"TEST_{tag}", prefix=f"t{tag}",
                           fetch_wait_s=0.3, **overrides)  # type: ignore[arg-type]


@dataclass
class Harness:
    kind: str  # "memory" or "nats"
    container: Container
    bus: InProcessBus | JetStreamBus
    relay: Relay | JetStreamRelay

    @property
    def services(self) -> Services:
        return self.container.services

    @property
    def requeue(self) -> Callable[..., None] | None:
        return self.bus.requeue if isinstance(self.bus, JetStreamBus) else None

    def start(self) -> None:
        """Start the durable consumers (subscribe them first). No wait: the consumers exist
        when this returns, so what the relay publishes next reaches them."""
        if isinstance(self.bus, JetStreamBus):
            self.bus.start_consumers(self.services, POLICY)

    def pump(self, until: Callable[[], bool], timeout_s: float = 20.0) -> None:
        """Run the relay until ``until()`` holds; fails the test after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not until():
            assert time.monotonic() < deadline, "the bus did not deliver in time"
            self.relay.drain()
            time.sleep(0.02)

    def record(self, subjects: list[str], per_subject: int, type: str = "test.happened",
               region_id: str = "reg.t 1") -> list[str]:
        """``per_subject`` events for each subject, interleaved: s0#0, s1#0, ..., s0#1, ..."""
        ids = []
        with self.services.uow() as uow:
            for n in range(per_subject):
                for subject in subjects:
                    event = new_event(self.services, type=type, region_id=region_id,
                                      subject_id=subject, actor_kind="system",
                                      actor_id="system", data={"n": n})
                    event = Event.from_dict({**event.to_dict(),
                                             "headers": {"traceparent": f"00-{n:032x}-1-01"}})
                    record(uow, self.services, event)
                    ids.append(event.event_id)
            uow.commit()
        return ids


def make_harness(kind: str, tmp_path: Path, database_url: str | None = None) -> Harness:
    container = build(Settings(data_dir=tmp_path, database_url=database_url))
    bus: InProcessBus | JetStreamBus
    relay: Relay | JetStreamRelay
    if kind == "memory":
        bus = InProcessBus()
        relay = Relay(container.services, bus, policy=POLICY)
    else:
        bus = JetStreamBus(unique_config())
        relay = JetStreamRelay(container.services, bus)
    relay.drain()  # nothing is recorded yet; registers nobody
    return Harness(kind=kind, container=container, bus=bus, relay=relay)


def close_harness(h: Harness) -> None:
    if isinstance(h.bus, JetStreamBus):
        try:
            h.bus.delete_stream()
        finally:
            h.bus.close()
    h.container.close()


def effect_handler(services: Services, name: str,
                   fail: Callable[[Event], bool] = lambda e: False,
                   seen: list[Event] | None = None) -> IdempotentHandler:
    """A durable handler whose effect is one ``test.effect`` history row per event."""
    def effect(event: Event, uow: UnitOfWork) -> None:
        if seen is not None:
            seen.append(event)
        if fail(event):
            raise RuntimeError(f"cannot handle {event.event_id}")
        uow.events.append(new_event(services, type="test.effect", region_id=event.region_id,
                                    subject_id=f"{name}:{event.event_id}",
                                    actor_kind="system", actor_id=name))

    return IdempotentHandler(services, name, effect)


def effects(services: Services, name: str, event_ids: list[str]) -> dict[str, int]:
    with services.uow(read_only=True) as uow:
        return {i: len(uow.events.for_subject(f"{name}:{i}")) for i in event_ids}


def wait_for(cond: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
