"""Clocks and id sources: the only place that reads the wall clock."""

from __future__ import annotations

import itertools
import threading
import time
import uuid


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told (tests and the simulator)."""

    def __init__(self, start: float = 1_767_225_600.0):  # 2026-01-01T00:00:00Z
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, at: float) -> None:
        self._now = at


class UuidIds:
    """Random ids: ``ord_1f3a…`` (uuid4, 20 hex chars)."""

    def new(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:20]}"


class SequentialIds:
    """Deterministic ids for the simulator and tests: ``ord_000001``."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_{next(self._counter):06d}"
