"""The FastAPI application: one router per side, one error handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from lastmile import __version__
from lastmile.adapters.telemetry.metrics import exposition_for, worker_exit
from lastmile.api import errors, observability, readiness
from lastmile.api.overload import OverloadGuard, overload_state
from lastmile.api.page_headers import HtmlSecurityHeaders
from lastmile.api.routers import (
    consumer,
    courier,
    dashboard,
    dead_letters,
    drive,
    experiments,
    ledger,
    merchant,
    ops,
    overload,
    payments,
    refunds,
    reports,
    sandbox,
    streams,
    tenant,
    testkit,
    tracking_page,
)
from lastmile.api.streams import StreamHub
from lastmile.bootstrap import Container


def create_app(container: Container, *, start_workers: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        hub.start()
        if start_workers:
            container.start()
        yield
        hub.stop()
        if start_workers:
            container.close()
        worker_exit()  # in multi-process mode: this worker's live gauges leave the sums

    hub = StreamHub(container.bus)

    app = FastAPI(
        title="lastmile", version=__version__, lifespan=lifespan,
        description="Three-sided delivery marketplace API. Authenticate with "
        "`Authorization: Bearer <key>` (keys from `lastmile keys issue`).",
    )
    app.state.container = container
    app.state.stream_hub = hub
    errors.install(app)
    app.add_middleware(HtmlSecurityHeaders)
    # Added last, so outermost: a shed request is refused before any other middleware runs.
    app.state.overload = overload_state(container.settings)
    app.add_middleware(OverloadGuard, state=app.state.overload)
    for module in (consumer, merchant, courier, ops, streams, dashboard, drive, dead_letters,
                   tracking_page, overload, sandbox, tenant, testkit, ledger, payments,
                   refunds, reports, experiments):
        app.include_router(module.router, responses=errors.PROBLEM_RESPONSES)

    readiness.install(app, container)

    # Last: the outermost middleware, so it times, counts and logs what the others answer.
    observability.install(app, exposition_for(container.engine, container.services.clock,
                                              container.bus))

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    return app
