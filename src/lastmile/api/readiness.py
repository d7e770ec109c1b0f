"""Readiness (``/readyz``: can this process serve, dependency by dependency) and the request
deadline (no HTTP request waits longer than ``REQUEST_DEADLINE_S`` for its answer).

``/healthz`` stays liveness only (the process answers): an orchestrator restarts a process
whose liveness fails, and restarting every API process because PostgreSQL is down helps
nobody. ``/readyz`` is what a load balancer asks before sending traffic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from lastmile.adapters.outages import RETRY_AFTER_S, redis_client
from lastmile.adapters.probes import Probe, check, database_probe, nats_probe, redis_probe
from lastmile.api.errors import PROBLEM, problem
from lastmile.bootstrap import Container

log = logging.getLogger(__name__)
PROBE_BOUND_S = 2.5  # /readyz answers within this, whatever is down
# A request still unanswered after this gets a 503 (its thread finishes on its own driver
# timeouts; a write it commits later is safe to retry with its Idempotency-Key). Longer
# than any driver bound in docs/faults.md, so it only fires on a slow, not a dead, server.
REQUEST_DEADLINE_S = 8.0
# Without NATS a process still takes orders and pings (events wait in the PostgreSQL outbox
# and leave when NATS is back): it stays in the load balancer, reported "degraded". Taking
# every API process out because the log is away would turn a delay into an outage.
DEGRADED_ONLY = frozenset({"nats"})
PROBES_EXTRA = "probes"  # container.extras key: more probes, e.g. a NATS bus's own

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def probes(container: Container) -> dict[str, Probe]:
    """One probe per server this process uses: the database always, Redis and NATS when
    configured; a bus adapter may register its own under ``extras["probes"]``."""
    found: dict[str, Probe] = {"database": database_probe(container.engine)}
    settings = container.settings
    if settings.redis_url is not None:
        client = container.extras.get("readiness_redis")
        if client is None:
            client = container.extras["readiness_redis"] = redis_client(settings.redis_url)
        found["redis"] = redis_probe(client)  # type: ignore[arg-type]
    if settings.nats_url is not None:
        found["nats"] = nats_probe(settings.nats_url)
    extra = container.extras.get(PROBES_EXTRA)
    if isinstance(extra, dict):
        found.update(extra)
    return found


def install(app: FastAPI, container: Container) -> None:
    @app.get("/readyz", tags=["meta"], responses={503: {
        "description": "A dependency is down", "content": {PROBLEM: {}}}})
    def readyz() -> JSONResponse:
        results = check(probes(container), PROBE_BOUND_S)
        report = {name: {"ok": r.ok, "latency_ms": r.latency_ms,
                         **({"error": r.error} if r.error else {})}
                  for name, r in results.items()}
        # Required dependencies first: the one named in ``dependency`` is why it is 503.
        down = sorted((name for name, r in results.items() if not r.ok),
                      key=lambda name: (name in DEGRADED_ONLY, name))
        if not set(down) - DEGRADED_ONLY:
            return JSONResponse({"status": "degraded" if down else "ready",
                                 "dependencies": report})
        response = problem(503, "dependency_unavailable",
                           f"not ready: {', '.join(down)} unavailable",
                           dependency=down[0], dependencies=report)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    app.add_middleware(Deadline, deadline_s=REQUEST_DEADLINE_S)


class Deadline:
    """Answers 503 ``request_timeout`` to an HTTP request that has not started its answer
    within ``deadline_s``; the late answer, if any, is dropped. WebSockets are left alone."""

    def __init__(self, app: Asgi, *, deadline_s: float):
        self.app = app
        self.deadline_s = deadline_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = asyncio.Event()
        late = False

        async def guarded_send(message: Message) -> None:
            if late:
                return
            started.set()
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        waiter = asyncio.ensure_future(started.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=self.deadline_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        if done:
            waiter.cancel()
            await task  # the answer has started (or the app finished): let it complete
            return
        late = True
        waiter.cancel()
        _LATE.add(task)
        task.add_done_callback(_forget)
        log.warning("%s %s: no answer within %.1f s, answered 503", scope.get("method"),
                    scope.get("path"), self.deadline_s)
        response = problem(503, "request_timeout", f"no answer within {self.deadline_s} s: "
                           "a dependency is slow; retry (with the same Idempotency-Key)")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        await response(scope, receive, send)


_LATE: set[asyncio.Task[None]] = set()  # late requests still running: kept from the GC


def _forget(task: asyncio.Task[None]) -> None:
    _LATE.discard(task)
    if not task.cancelled() and task.exception() is not None:  # retrieved: logged, not lost
        log.warning("late request failed: %r", task.exception())
