"""Rate limits per client and priority class, with the ``limits`` library.

Storage is Redis when a URL is given, so every API process spends from the
same buckets (a client cannot multiply its allowance by the number of
processes behind the load balancer), and process memory otherwise. The async
API of ``limits`` is used so the check runs on the event loop: no thread hop,
no blocking call. The storage is bound to the event loop it first ran on
(redis.asyncio connections are); a new loop (a new TestClient) gets a new one.

Strategies (``limits``' names): ``moving-window`` counts every hit in the last
window exactly (a sorted set per key in Redis); ``sliding-window`` weighs the
previous fixed window, which is cheaper and approximate.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.storage import storage_from_string

from lastmile.core.overload import Priority

log = logging.getLogger(__name__)
REDIS_TIMEOUT_S = 0.25  # a cut Redis must not hold a request: the check fails open instead
# After a storage failure the limiter is skipped this long, so a Redis outage costs one
# timeout per process per period, not one per request (and one log line, not thousands).
STORAGE_RETRY_S = 5.0

STRATEGIES: dict[str, type[RateLimiter]] = {
    "moving-window": MovingWindowRateLimiter,
    "sliding-window": SlidingWindowCounterRateLimiter,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    allowed: bool
    limit: str = ""  # the limit that refused, e.g. "10 per 1 second"
    retry_after_s: int = 0  # seconds until a slot frees (>= 1 when refused)


ALLOWED = Verdict(allowed=True)


def parse_limits(spec: Mapping[Priority, str]) -> dict[Priority, RateLimitItem]:
    """``{"browse": "10/second"}`` -> items; an empty string means no limit for the class."""
    items: dict[Priority, RateLimitItem] = {}
    for priority, text in spec.items():
        if not text.strip():
            continue
        try:
            items[priority] = parse(text)
        except ValueError as exc:
            raise ValueError(f"rate limit for {priority.value} must look like '10/second' "
                             f"(got {text!r})") from exc
    return items


class RateLimits:
    """Per-client, per-class limits; ``check`` spends one hit and says if it was allowed."""

    def __init__(self, limits: Mapping[Priority, RateLimitItem], *, now: Callable[[], float],
                 redis_url: str | None = None, prefix: str = "lastmile:",
                 strategy: str = "moving-window") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"rate limit strategy must be one of {', '.join(STRATEGIES)} "
                             f"(got {strategy!r})")
        self._limits = dict(limits)
        self._now = now
        self._redis_url, self._prefix = redis_url, prefix + "ratelimit"
        self._strategy = STRATEGIES[strategy]
        self._limiter: RateLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._skip_until = 0.0
        self.storage_failures = 0
        self.shared = redis_url is not None

    def describe(self) -> dict[str, str]:
        return {p.value: str(item) for p, item in self._limits.items()}

    def _current(self) -> RateLimiter:
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._loop is not loop:
            if self._redis_url is None:
                storage = storage_from_string("async+memory://")
            else:
                uri = "async+" + self._redis_url.removeprefix("async+")
                storage = storage_from_string(uri, implementation="redispy",
                                              key_prefix=self._prefix,
                                              socket_timeout=REDIS_TIMEOUT_S,
                                              socket_connect_timeout=REDIS_TIMEOUT_S)
            self._limiter, self._loop = self._strategy(storage), loop
        return self._limiter

    async def check(self, priority: Priority, client: str) -> Verdict:
        item = self._limits.get(priority)
        if item is None:
            return ALLOWED
        if self._skip_until and self._now() < self._skip_until:
            return ALLOWED
        limiter = self._current()
        try:
            if await limiter.hit(item, priority.value, client):
                return ALLOWED
            stats = await limiter.get_window_stats(item, priority.value, client)
        except Exception as exc:  # storage down: admission control still bounds the load
            self.storage_failures += 1
            self._skip_until = self._now() + STORAGE_RETRY_S
            log.warning("rate limit storage unavailable (%s): requests let through for %.0f s",
                        type(exc).__name__, STORAGE_RETRY_S)
            return ALLOWED
        wait = max(1, math.ceil(stats.reset_time - self._now()))
        return Verdict(allowed=False, limit=str(item), retry_after_s=wait)

    async def aclose(self) -> None:
        """Close the Redis connections of this loop's storage (at the app's shutdown)."""
        limiter, self._limiter, self._loop = self._limiter, None, None
        bridge = getattr(limiter.storage, "bridge", None) if limiter is not None else None
        client = getattr(bridge, "storage", None)  # limits keeps the redis.asyncio client here
        if client is not None:
            await client.aclose()

    async def reset(self) -> None:
        """Forget every bucket (tests; ``limits`` removes only its own prefixed keys)."""
        await self._current().storage.reset()
