"""The idempotency cache of one process (embedded profile): a dict under a condition."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from lastmile.app.idempotency import CachedAnswer

MAX_ENTRIES = 100_000  # past this, expired entries go, then the oldest (insertion order)


@dataclass(frozen=True, slots=True)
class _Entry:
    expires_at: float  # time.monotonic()
    token: str | None  # set while in flight
    answer: CachedAnswer | None  # set once completed


class MemoryIdempotencyCache:
    """Threads of one process wait on a condition for the first request's answer."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._changed = threading.Condition()

    def _live(self, at: tuple[str, str], now: float) -> _Entry | None:
        entry = self._entries.get(at)
        if entry is not None and entry.expires_at <= now:
            del self._entries[at]
            return None
        return entry

    def claim(self, scope: str, key: str, *, ttl_s: float) -> str | None:
        now = time.monotonic()
        with self._changed:
            if self._live((scope, key), now) is not None:
                return None
            self._make_room(now)
            token = secrets.token_hex(8)
            self._entries[(scope, key)] = _Entry(expires_at=now + ttl_s, token=token, answer=None)
            return token

    def complete(self, scope: str, key: str, answer: CachedAnswer, *, ttl_s: float) -> None:
        with self._changed:
            self._entries.pop((scope, key), None)  # re-insert: newest last, evicted last
            self._entries[(scope, key)] = _Entry(expires_at=time.monotonic() + ttl_s,
                                                 token=None, answer=answer)
            self._changed.notify_all()

    def release(self, scope: str, key: str, token: str) -> None:
        with self._changed:
            entry = self._entries.get((scope, key))
            if entry is not None and entry.token == token:
                del self._entries[(scope, key)]
                self._changed.notify_all()

    def wait(self, scope: str, key: str, *, timeout_s: float) -> CachedAnswer | None:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                now = time.monotonic()
                entry = self._live((scope, key), now)
                if entry is None or entry.answer is not None:
                    return None if entry is None else entry.answer
                if now >= deadline:
                    return None
                self._changed.wait(min(deadline, entry.expires_at) - now)

    def _make_room(self, now: float) -> None:
        if len(self._entries) < self._max:
            return
        for at in [at for at, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[at]
        while len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
