"""CPU cost of moving events through the bus: the in-process relay against NATS JetStream.

For each bus, on a fresh SQLite database: record ``--events`` events (10 subjects), then
time how much CPU this process spends (``time.process_time``: every thread, the NATS
server excluded) until one durable subscriber with an inbox-guarded effect
(``IdempotentHandler``) has handled all of them:

- ``relay_cpu_us_per_event``: the outbox relay (in-process: fan-out into
  ``event_deliveries``; JetStream: claim, publish with PubAck, mark sent);
- ``deliver_cpu_us_per_event``: delivering to the subscriber and settling (in-process:
  claim, call, delete the queue row; JetStream: fetch, call, ack);
- ``wall_s``: for reference only on a shared machine.

Prints one JSON line per bus and a last line ``{"memory": {...}, "nats": {...}}``.
Needs NATS on 127.0.0.1:4222 for the second (skipped with a reason otherwise); the stream
it creates is deleted at the end.

    PYTHONPATH=src .venv/bin/python bench/eventlog.py --events 2000
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from lastmile.adapters.bus.jetstream import JetStreamBus
from lastmile.adapters.bus.jetstream_relay import JetStreamRelay
from lastmile.adapters.bus.jetstream_wire import JetStreamConfig
from lastmile.adapters.bus.memory import InProcessBus
from lastmile.adapters.bus.outbox import IdempotentHandler, Relay, RelayPolicy
from lastmile.app.context import Services, new_event, record
from lastmile.app.events import Event
from lastmile.app.ports import UnitOfWork
from lastmile.bootstrap import build
from lastmile.settings import Settings

TIMEOUT_S = 120.0


def _record(services: Services, n: int) -> None:
    with services.uow() as uow:
        for i in range(n):
            record(uow, services, new_event(services, type="bench.happened", region_id="r1",
                                            subject_id=f"s{i % 10}", actor_kind="system",
                                            actor_id="bench", data={"i": i}))
        uow.commit()


def _handler(services: Services, handled: list[int]) -> IdempotentHandler:
    def effect(event: Event, uow: UnitOfWork) -> None:
        handled.append(1)

    return IdempotentHandler(services, "bench", effect)


def run_memory(n: int) -> dict[str, Any]:
    container = build(Settings(data_dir=Path(tempfile.mkdtemp())))
    services, handled = container.services, []
    bus = InProcessBus()
    bus.subscribe("*", _handler(services, handled), durable="bench")
    relay = Relay(services, bus, policy=RelayPolicy(batch=200))
    relay.run_once()  # registers the subscriber
    _record(services, n)
    wall, cpu = time.perf_counter(), time.process_time()
    while relay.fan_out():
        pass
    relay_cpu = time.process_time() - cpu
    while relay.deliver("bench"):
        pass
    deliver_cpu = time.process_time() - cpu - relay_cpu
    out = _summary(n, len(handled), relay_cpu, deliver_cpu, time.perf_counter() - wall)
    container.close()
    return out


def run_nats(n: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    bus = JetStreamBus(JetStreamConfig(url="nats://127.0.0.1:4222", stream=f"BENCH_{tag}",
                                       prefix=f"bench{tag}", fetch_wait_s=0.2))
    container = build(Settings(data_dir=Path(tempfile.mkdtemp())))
    services, handled = container.services, []
    try:
        bus.subscribe("*", _handler(services, handled), durable="bench")
        bus.start_consumers(services, RelayPolicy())
        deadline = time.monotonic() + 10
        while "bench" not in bus.lag() or bus.consumer_stats()["bench"]["fetch_errors"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the consumer did not start")
            time.sleep(0.1)
        time.sleep(0.5)
        _record(services, n)
        relay = JetStreamRelay(services, bus, batch=200)
        wall, cpu = time.perf_counter(), time.process_time()
        relay.drain()  # the consumer thread already works meanwhile: split below
        relay_wall = time.perf_counter() - wall
        deadline = time.monotonic() + TIMEOUT_S
        while len(handled) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        total_cpu = time.process_time() - cpu
        idle = _idle_cpu(0.5)  # the fetch loop's own cost while idle, subtracted per second
        total_cpu -= idle * (time.perf_counter() - wall)
        # The relay's part, measured alone: the same batches published to a second stream.
        relay_cpu = _relay_alone(services, n)
        out = _summary(n, len(handled), relay_cpu, max(total_cpu - relay_cpu, 0.0),
                       time.perf_counter() - wall)
        out["relay_wall_s"] = round(relay_wall, 3)
        return out
    finally:
        bus.delete_stream()
        bus.close()
        container.close()


def _idle_cpu(seconds: float) -> float:
    cpu = time.process_time()
    time.sleep(seconds)
    return (time.process_time() - cpu) / seconds


def _relay_alone(services: Services, n: int) -> float:
    tag = uuid.uuid4().hex[:10]
    bus = JetStreamBus(JetStreamConfig(url="nats://127.0.0.1:4222", stream=f"BENCH_{tag}",
                                       prefix=f"bench{tag}"))
    try:
        bus.call(lambda js: js.account_info())  # connect outside the measurement
        _record(services, n)
        relay = JetStreamRelay(services, bus, batch=200)
        cpu = time.process_time()
        relay.drain()
        return time.process_time() - cpu
    finally:
        bus.delete_stream()
        bus.close()


def _summary(n: int, handled: int, relay_cpu: float, deliver_cpu: float,
             wall: float) -> dict[str, Any]:
    return {"events": n, "handled": handled,
            "relay_cpu_us_per_event": round(relay_cpu / n * 1e6, 1),
            "deliver_cpu_us_per_event": round(deliver_cpu / n * 1e6, 1),
            "wall_s": round(wall, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    results: dict[str, Any] = {"memory": run_memory(args.events)}
    print(json.dumps({"memory": results["memory"]}))
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=2).close()
    except OSError as exc:
        results["nats"] = {"skipped": f"no NATS on 127.0.0.1:4222 ({exc.__class__.__name__})"}
    else:
        results["nats"] = run_nats(args.events)
    print(json.dumps({"nats": results["nats"]}))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
