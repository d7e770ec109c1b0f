"""Order placement under faults: consumer threads that place orders without pause, retry an
unanswered order with the same Idempotency-Key (the outcome of a 503 or a dropped connection
is unknown), and record every answer with the time it took."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from api_orders import City, _order_body


@dataclass(frozen=True, slots=True)
class Answer:
    sent_at: float  # monotonic
    latency_s: float
    status: int  # 0: no HTTP answer (transport error)
    code: str | None = None
    dependency: str | None = None
    retry_after: str | None = None


@dataclass(slots=True)
class OrderLoad:
    base: str
    city: City
    clients: int = 4
    pause_s: float = 0.05
    retry_pause_s: float = 0.2
    answers: list[Answer] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> OrderLoad:
        for i in range(self.clients):
            key = self.city.consumer_keys[i % len(self.city.consumer_keys)]
            t = threading.Thread(target=self._run, args=(i, key), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self, index: int, key: str) -> None:
        rng = random.Random(index)
        weight = [1.0] * len(self.city.merchants)
        idem: str | None = None
        body: dict[str, Any] = {}
        with httpx.Client(base_url=self.base, timeout=20) as client:
            while not self._stop.is_set():
                if idem is None:
                    idem, body = uuid.uuid4().hex, _order_body(rng, self.city, weight)
                t0 = time.monotonic()
                try:
                    r = client.post("/v1/consumer/orders", json=body,
                                    headers={"Authorization": f"Bearer {key}",
                                             "Idempotency-Key": idem})
                except httpx.HTTPError:
                    self._record(Answer(t0, time.monotonic() - t0, 0))
                    self._stop.wait(self.retry_pause_s)
                    continue
                answer = _answer(r, t0)
                self._record(answer)
                if r.status_code in (200, 201):  # 200: a retry replayed a committed order
                    with self._lock:
                        self.acknowledged.add(r.json()["id"])
                    idem = None
                    self._stop.wait(self.pause_s)
                elif r.status_code == 503 or r.status_code >= 500:
                    self._stop.wait(self.retry_pause_s)  # same key: the outcome is unknown
                else:
                    idem = None  # refused for a reason of its own: counted, move on
                    self._stop.wait(self.pause_s)

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if start <= a.sent_at < end]

    def finished_between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if start <= a.sent_at + a.latency_s < end]


def _answer(r: httpx.Response, t0: float) -> Answer:
    code = dependency = None
    if r.headers.get("content-type", "").startswith("application/problem+json"):
        body = r.json()
        code, dependency = body.get("code"), body.get("dependency")
    return Answer(t0, time.monotonic() - t0, r.status_code, code, dependency,
                  r.headers.get("retry-after"))


def statuses(answers: Sequence[Answer]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in answers:
        label = f"{a.status} {a.code or ''}".strip()
        out[label] = out.get(label, 0) + 1
    return out


@dataclass(slots=True)
class PingLoad:
    """Couriers on shift, each pinging its main device every ``every_s``; remembers each
    courier's pings (lat, lng) in order with their answers."""

    base: str
    courier_keys: Sequence[str]
    every_s: float = 0.1
    answers: list[Answer] = field(default_factory=list)
    sent: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> PingLoad:
        for i, key in enumerate(self.courier_keys):
            headers = {"Authorization": f"Bearer {key}"}
            me = httpx.get(f"{self.base}/v1/courier/me", headers=headers, timeout=10).json()
            r = httpx.post(f"{self.base}/v1/courier/shift/start", headers=headers, timeout=10,
                           json={"device_id": f"phone-{i}", "duration_s": 3600})
            assert r.status_code == 200, r.text
            self.sent[me["id"]] = []
            t = threading.Thread(target=self._run, args=(i, me["id"], headers), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self, index: int, courier_id: str, headers: dict[str, str]) -> None:
        lat, lng = 37.44 + index * 0.001, -122.15
        with httpx.Client(base_url=self.base, timeout=20, headers=headers) as client:
            while not self._stop.is_set():
                lat += 0.00001
                t0 = time.monotonic()
                body = {"device_id": f"phone-{index}", "lat": lat, "lng": lng,
                        "accuracy_m": 10.0, "client_ts": time.time(), "speed_mps": 1.0}
                try:
                    r = client.post("/v1/courier/location", json=body)
                    answer = _answer(r, t0)
                except httpx.HTTPError:
                    answer = Answer(t0, time.monotonic() - t0, 0)
                with self._lock:
                    self.answers.append(answer)
                    self.sent[courier_id].append((lat, lng, answer.status))
                self._stop.wait(self.every_s)

    def between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if start <= a.sent_at < end]
