"""Recently authenticated API keys, so a request does not open a database transaction
just to learn who sent it.

Every request authenticates; looking the key's hash up costs a unit of work (on
PostgreSQL: pool checkout and ping, BEGIN, SET TRANSACTION READ ONLY, SELECT, ROLLBACK),
which profiling showed as 13 % of the server's CPU under order load (docs/capacity.md).
Keys change only when issued (a new hash: a miss, looked up) and when revoked (a ban).

Revocation stays prompt:
- in the process that revokes, immediately: the ban forgets the subject's entries after
  its commit, and a lookup that raced the ban (read the row before the ban committed) is
  not stored, because forgetting moves ``generation`` on;
- in other API processes, within ``ttl_s`` (2 s by default): an entry is trusted that
  long after its lookup, then looked up again.
Unknown and revoked keys are never cached: each attempt is looked up.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

DEFAULT_TTL_S = 2.0
MAX_ENTRIES = 100_000  # past this the cache starts over (a flood of distinct keys)


class _Keyed(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def subject_id(self) -> str: ...


P = TypeVar("P", bound=_Keyed)


class KeyCache(Generic[P]):
    """Key hash -> its principal (role, subject, tenant) for ``ttl_s`` seconds of the
    injected clock."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_entries: int = MAX_ENTRIES):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[P, float]] = {}
        self._lock = threading.Lock()
        self.generation = 0  # moves on at every forget: lookups begun before it are dropped

    def get(self, key_hash: str, *, now: float) -> P | None:
        entry = self._entries.get(key_hash)
        if entry is None or not 0 <= now - entry[1] < self.ttl_s:
            return None
        return entry[0]

    def put(self, key_hash: str, principal: P, *, now: float, generation: int) -> None:
        """Remember a valid key read at ``generation`` (skipped if a forget came since)."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key_hash] = (principal, now)

    def forget_subject(self, role: str, subject_id: str) -> None:
        """Drop every cached key of (role, subject id): called once its revocation committed."""
        with self._lock:
            self.generation += 1
            for key_hash, entry in list(self._entries.items()):
                if entry[0].role == role and entry[0].subject_id == subject_id:
                    del self._entries[key_hash]
