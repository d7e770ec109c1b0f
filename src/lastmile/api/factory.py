"""The app factory each API process of ``lastmile serve --workers N`` calls.

uvicorn starts every worker as a fresh interpreter and imports
``lastmile.api.factory:create_app_from_env``; the worker builds its own container
(engine, Redis clients, bus, relay) from the environment, which ``lastmile serve``
filled from its options before starting them. The parent already migrated the schema,
so workers do not race to migrate it; a worker only checks that it is current. Each response names the process that answered
(``X-Lastmile-Worker``): load balancing is visible from outside.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastmile.adapters.db.revision import require_current_schema
from lastmile.adapters.telemetry.setup import configure_process
from lastmile.api.app import create_app
from lastmile.bootstrap import build
from lastmile.settings import Settings

WORKER_HEADER = "X-Lastmile-Worker"


def create_app_from_env() -> FastAPI:
    """One API process: the API, its WebSocket hub and an outbox relay; no dispatcher
    (``lastmile dispatcher`` runs those)."""
    settings = Settings.from_env()
    configure_process(settings)
    container = build(settings, run_migrations=False)
    try:
        require_current_schema(container.engine)
    except Exception:
        container.close()
        raise
    app = create_app(container)
    app.add_middleware(NameTheWorker, pid=os.getpid())
    return app


class NameTheWorker:
    """Adds ``X-Lastmile-Worker: <pid>`` to every HTTP response (plain ASGI: no body
    buffering, no extra task per request)."""

    def __init__(self, app: ASGIApp, *, pid: int) -> None:
        self.app = app
        self.header = (WORKER_HEADER.lower().encode(), str(pid).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, named)
