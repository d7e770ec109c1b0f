"""The overload guard: pure ASGI middleware that classes, rate-limits and admits each request.

Per request: the route's class (``api.priorities``), the admission decision
(``core.overload.admit``, a pure function of this process's in-flight counters),
then the client's rate limit for that class (``adapters.ratelimit``, shared in
Redis when configured). A refusal is a 429 problem+json with ``Retry-After``
and never reaches the routers, so shedding costs microseconds, not a request's
worth of work. Counting happens on the event loop (no lock, no thread hop).
Admission comes first: a saturated process sheds without a Redis round trip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastmile.adapters.clock import SystemClock
from lastmile.adapters.overload_metrics import OverloadMetrics, metrics
from lastmile.adapters.ratelimit import RateLimits, Verdict, parse_limits
from lastmile.api.errors import problem
from lastmile.api.priorities import WS, RouteClassifier
from lastmile.core.overload import (
    PRIORITIES,
    SHED_OVERLOAD,
    SHED_RATE_LIMIT,
    Admission,
    AdmissionPolicy,
    Priority,
    admit,
    shed_classes,
)
from lastmile.settings import Settings

WS_TRY_AGAIN_LATER = 1013  # RFC 6455 close code for "try again later"


@dataclass(slots=True)
class OverloadState:
    """What the guard counts in this process; the ops API reads ``snapshot()``."""

    policy: AdmissionPolicy
    limits: RateLimits | None
    classifier: RouteClassifier = field(default_factory=RouteClassifier)
    in_flight: dict[Priority, int] = field(default_factory=lambda: dict.fromkeys(PRIORITIES, 0))
    admitted: dict[Priority, int] = field(default_factory=lambda: dict.fromkeys(PRIORITIES, 0))
    shed: dict[tuple[Priority, str], int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, object]:
        return {
            "policy": {"in_flight_ceiling": {p.value: self.policy.ceiling(p) for p in PRIORITIES},
                       "retry_after_s": {p.value: self.policy.retry_after(p)
                                         for p in PRIORITIES}},
            "rate_limits": {"per_client": self.limits.describe() if self.limits else {},
                            "shared": bool(self.limits and self.limits.shared)},
            "in_flight": {p.value: n for p, n in self.in_flight.items()},
            "shedding": [p.value for p in shed_classes(self.policy, self.in_flight)],
            "admitted": {p.value: n for p, n in self.admitted.items()},
            "shed": [{"priority": p.value, "reason": reason, "count": n}
                     for (p, reason), n in sorted(self.shed.items())],
        }


def overload_state(settings: Settings) -> OverloadState:
    """The policy and limits ``settings`` ask for (``LASTMILE_SHED_*``, ``LASTMILE_RATE_LIMIT_*``)."""
    policy = AdmissionPolicy(browse_max=settings.shed_browse_inflight,
                             normal_max=settings.shed_normal_inflight,
                             critical_max=settings.shed_critical_inflight)
    items = parse_limits({Priority.CRITICAL: settings.rate_limit_critical,
                          Priority.NORMAL: settings.rate_limit_normal,
                          Priority.BROWSE: settings.rate_limit_browse})
    limits = (RateLimits(items, now=SystemClock().now, redis_url=settings.redis_url,
                         prefix=settings.redis_prefix, strategy=settings.rate_limit_strategy)
              if items else None)
    return OverloadState(policy=policy, limits=limits)


def client_key(scope: Scope) -> str:
    """The rate-limit identity: the API key (by its SHA-256, the form the key table stores,
    so no database read is needed here), else the client's address."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return "key:" + hashlib.sha256(value[7:].strip()).hexdigest()[:24]
        if name == b"x-api-key" and value:
            return "key:" + hashlib.sha256(value.strip()).hexdigest()[:24]
    client = scope.get("client")
    return f"ip:{client[0]}" if client else "ip:unknown"


class OverloadGuard:
    """ASGI middleware; add it last (outermost) so a shed request costs the least."""

    def __init__(self, app: ASGIApp, *, state: OverloadState) -> None:
        self.app, self.state = app, state
        self.m: OverloadMetrics = metrics()
        self._admitted = {p: self.m.admitted.labels(p.value) for p in PRIORITIES}
        self._inflight = {p: self.m.inflight.labels(p.value) for p in PRIORITIES}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, self._closing(send))
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = WS if kind == "websocket" else str(scope["method"])
        state = self.state
        priority = state.classifier.classify(method, str(scope["path"]))
        decision = admit(state.policy, state.in_flight, priority)
        if not decision.admitted:
            self._count_shed(priority, SHED_OVERLOAD)
            await self._refuse(scope, receive, send, overloaded=decision)
            return
        counts = kind == "http"  # an open WebSocket is not a request in flight
        if counts:
            state.in_flight[priority] += 1
            self._inflight[priority].inc()
        try:
            verdict = (await state.limits.check(priority, client_key(scope))
                       if state.limits is not None else None)
            if verdict is not None and not verdict.allowed:
                self._count_shed(priority, SHED_RATE_LIMIT)
                await self._refuse(scope, receive, send, limited=(priority, verdict))
                return
            state.admitted[priority] += 1
            self._admitted[priority].inc()
            await self.app(scope, receive, send)
        finally:
            if counts:
                state.in_flight[priority] -= 1
                self._inflight[priority].dec()

    def _closing(self, send: Send) -> Send:
        """``send`` that closes the rate limiter's connections as the app shuts down."""
        async def send_then_close(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete" and self.state.limits:
                await self.state.limits.aclose()
            await send(message)

        return send_then_close

    def _count_shed(self, priority: Priority, reason: str) -> None:
        key = (priority, reason)
        self.state.shed[key] = self.state.shed.get(key, 0) + 1
        self.m.shed.labels(priority.value, reason).inc()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, *,
                      overloaded: Admission | None = None,
                      limited: tuple[Priority, Verdict] | None = None) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": WS_TRY_AGAIN_LATER})
            return
        if overloaded is not None:
            p, wait = overloaded.priority, overloaded.retry_after_s
            response = problem(
                429, "overloaded", f"the server is shedding {p.value} requests "
                f"({overloaded.in_flight} in flight, ceiling {overloaded.ceiling}); retry in "
                f"{wait} s", priority=p.value, retry_after_s=wait)
        else:
            assert limited is not None
            p, verdict = limited
            wait = verdict.retry_after_s
            response = problem(
                429, "rate_limited", f"rate limit {verdict.limit} for {p.value} requests "
                f"exceeded for this client; retry in {wait} s", priority=p.value,
                limit=verdict.limit, retry_after_s=wait)
        response.headers["Retry-After"] = str(wait)
        await response(scope, receive, send)
