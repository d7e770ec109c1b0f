"""Idempotent creation across processes: a replay cache and an in-flight marker in front
of the database's idempotency records.

The database stays authoritative: the record (``idempotency_keys`` for orders, the
``deliveries`` row for Drive) is written in the same transaction as what it names,
and its unique key settles any race. The cache only spares work:

- a retry whose first answer is known replays it from one read (no write transaction);
- a concurrent duplicate, maybe on another API process, finds the first request's
  in-flight marker (taken with SET NX and an expiry) and waits for its answer instead
  of pricing and writing a whole order only to be rolled back by the unique key.

Cache entries are per tenant: ``once`` puts the current tenant in front of every scope, so
two tenants sending the same key (on the same scope string) neither wait for each other's
marker nor replay each other's answer, whatever the scope is made of.

The cache is never required: when it is unreachable (``CacheUnavailable``) the request
takes the database path alone, as it would with no cache, and the failure is logged.
Whenever the cache cannot answer (no entry, a different request hash, an answer whose
resource is gone, a marker that outlived ``WAIT_S``), the request takes the database
path, which gives the same answers as without a cache. A process killed while holding
a marker costs its duplicates at most ``ROUNDS * WAIT_S`` of waiting, never a wrong
answer; the marker expires after ``IN_FLIGHT_TTL_S``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

from lastmile.app.tenancy import current_tenant

T = TypeVar("T")
log = logging.getLogger(__name__)

IN_FLIGHT_TTL_S = 30.0  # longer than any placement takes; a dead holder's marker expires
REPLAY_TTL_S = 3600.0  # clients retry within minutes; later retries replay from the database
WAIT_S = 5.0  # how long a duplicate waits for the first request's answer per round
ROUNDS = 3  # claim attempts before the database decides alone


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedAnswer:
    """The first request's answer: which request it was and what it created."""

    request_hash: str
    resource_id: str


class CacheUnavailable(Exception):
    """The cache's server did not answer (an adapter raises it for any of its errors)."""


class IdempotencyCache(Protocol):
    """Shared by every API process (Redis) or by the threads of one (memory)."""

    def claim(self, scope: str, key: str, *, ttl_s: float) -> str | None:
        """Take the in-flight marker of (scope, key): a token when this caller now holds
        it, None when another request holds it or its answer is cached."""
        ...

    def complete(self, scope: str, key: str, answer: CachedAnswer, *, ttl_s: float) -> None:
        """Replace the marker by the committed answer, kept ``ttl_s`` seconds."""
        ...

    def release(self, scope: str, key: str, token: str) -> None:
        """Drop the marker if ``token`` still holds it (the request failed: nothing to replay)."""
        ...

    def wait(self, scope: str, key: str, *, timeout_s: float) -> CachedAnswer | None:
        """The answer once there is one; None when the marker is gone without an answer
        (the holder failed or it expired) or after ``timeout_s``."""
        ...


def once(cache: IdempotencyCache | None, *, scope: str, key: str, request_hash: str,
         create: Callable[[], T], resource_of: Callable[[T], str],
         replay: Callable[[str], T | None]) -> T:
    """``create()`` unless the cache knows (or soon learns) the answer to this request.

    ``create`` is the database path: it replays a committed record itself and wins or
    loses the unique key. ``replay(resource_id)`` loads a cached answer's resource, or
    None when it is gone (the database then decides).
    """
    if cache is None:
        return create()
    scope = tenant_scope(scope)
    try:
        return _cached_once(cache, scope=scope, key=key, request_hash=request_hash,
                            create=create, resource_of=resource_of, replay=replay)
    except CacheUnavailable as exc:
        log.warning("idempotency cache unavailable (%s): the database decides alone", exc)
    return create()


def tenant_scope(scope: str) -> str:
    """``scope`` in the current tenant's name space of the cache (``acme:live/order:con_1``)."""
    return f"{current_tenant()}/{scope}"


def _cached_once(cache: IdempotencyCache, *, scope: str, key: str, request_hash: str,
                 create: Callable[[], T], resource_of: Callable[[T], str],
                 replay: Callable[[str], T | None]) -> T:
    for _ in range(ROUNDS):
        token = cache.claim(scope, key, ttl_s=IN_FLIGHT_TTL_S)
        if token is not None:
            try:
                result = create()
            except BaseException:
                _quietly(partial(cache.release, scope, key, token))
                raise
            # Committed: a cache that fails now must not turn the answer into an error.
            done = CachedAnswer(request_hash=request_hash, resource_id=resource_of(result))
            _quietly(partial(cache.complete, scope, key, done, ttl_s=REPLAY_TTL_S))
            return result
        answer = cache.wait(scope, key, timeout_s=WAIT_S)
        if answer is None:
            continue  # the holder failed or vanished: claim again
        if answer.request_hash == request_hash:
            found = replay(answer.resource_id)
            if found is not None:
                return found
        break  # another request's key, or its resource is gone: the database answers
    return create()


def _quietly(step: Callable[[], None]) -> None:
    """Run a cache write whose failure only costs speed (a marker left to expire)."""
    try:
        step()
    except CacheUnavailable as exc:
        log.warning("idempotency cache write failed (%s); its marker expires by itself", exc)
