"""The idempotency cache shared by every API process (scale profile), in Redis.

One string per (scope, key) under ``<prefix>idem:<scope>:<key>``: ``f|<token>`` while the
first request is in flight (SET NX PX: one holder; the expiry frees it if its process
dies), then ``d|<request hash>|<resource id>`` for ``REPLAY_TTL_S``. A duplicate polls
the key (every ``POLL_S``) rather than subscribing: waits are rare and short, and a
poll needs no connection of its own.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lastmile.app.idempotency import CachedAnswer, CacheUnavailable

POLL_S = 0.01
CONNECT_TIMEOUT_S = 0.5
TIMEOUT_S = 1.0
_IN_FLIGHT, _DONE = "f", "d"
# Delete the marker only if this request still holds it (it may have expired and been
# taken by another): compare-and-delete in one step.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@contextmanager
def _answering() -> Iterator[None]:
    """Redis errors as the port's ``CacheUnavailable``: the use case then asks the database."""
    try:
        yield
    except redis.RedisError as exc:
        raise CacheUnavailable(f"Redis: {type(exc).__name__}") from exc


class RedisIdempotencyCache:
    def __init__(self, client: redis.Redis, *, prefix: str = "lastmile:") -> None:
        self._redis = client
        self._prefix = prefix
        self._release: Any = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "lastmile:") -> RedisIdempotencyCache:
        """A client that gives up fast: short timeouts, one immediate retry (a pooled
        connection the server closed), no backoff. A cache that hangs is worse than none:
        when Redis does not answer, the request goes the database path at once."""
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                      socket_timeout=TIMEOUT_S,
                                      retry=Retry(NoBackoff(), retries=1))
        return cls(client, prefix=prefix)

    def _key(self, scope: str, key: str) -> str:
        return f"{self._prefix}idem:{scope}:{key}"

    def claim(self, scope: str, key: str, *, ttl_s: float) -> str | None:
        token = secrets.token_hex(8)
        with _answering():
            taken = self._redis.set(self._key(scope, key), f"{_IN_FLIGHT}|{token}", nx=True,
                                    px=int(ttl_s * 1000))
        return token if taken else None

    def complete(self, scope: str, key: str, answer: CachedAnswer, *, ttl_s: float) -> None:
        with _answering():
            self._redis.set(self._key(scope, key),
                            f"{_DONE}|{answer.request_hash}|{answer.resource_id}",
                            px=int(ttl_s * 1000))

    def release(self, scope: str, key: str, token: str) -> None:
        with _answering():
            self._release(keys=[self._key(scope, key)], args=[f"{_IN_FLIGHT}|{token}"])

    def wait(self, scope: str, key: str, *, timeout_s: float) -> CachedAnswer | None:
        deadline = time.monotonic() + timeout_s
        name = self._key(scope, key)
        while True:
            with _answering():
                raw = self._redis.get(name)
            if raw is None:
                return None
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            state, _, rest = text.partition("|")
            if state == _DONE:
                request_hash, _, resource_id = rest.partition("|")
                return CachedAnswer(request_hash=request_hash, resource_id=resource_id)
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_S)
