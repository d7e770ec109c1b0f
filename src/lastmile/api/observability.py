"""Per-request observability: request id, server span, metrics and one access log line.

``Observability`` is a plain ASGI middleware (not ``BaseHTTPMiddleware``: it must not
buffer streamed responses, and it also sees WebSockets). Added last in ``create_app`` it
is the outermost of the app's middlewares, so its duration covers theirs and a request a
later middleware refuses (a 429 from load shedding) is still counted, traced and logged.

Each request is labelled with the tenant it ran as (``app.tenancy.edge_record``: the edge
enters it inside the app): the ``tenant`` metric label (bounded, ``metrics.TenantLabels``),
the server span's ``lastmile.tenant`` attribute and the access line's ``tenant`` field.

Labels and span names use the route *template* (``/v1/orders/{order_id}``), never the raw
path: the label set stays bounded, and paths that are credentials (``/track/{token}``)
never reach a metric, a span or a log line.

``GET /metrics`` is unauthenticated, like ``/healthz``: it must answer while the database
(which API keys are checked against) is down, which is when it is read most; it holds
aggregates only (route templates, consumer names, counts), no id or personal data.
Deployments keep it off the public edge (the proxy routes ``/v1``, ``/track``, ``/ops``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from fastapi import APIRouter, FastAPI, Response
from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastmile.adapters.telemetry import metrics
from lastmile.adapters.telemetry.logs import request_id_var
from lastmile.adapters.telemetry.tracing import TENANT_ATTRIBUTE, server_span_error, tracer
from lastmile.app.tenancy import edge_record
from lastmile.app.tenants import list_tenants

access_log = logging.getLogger("lastmile.access")
REQUEST_ID_HEADER = "x-request-id"
# A client's id is kept when it is a plain token (it lands in every log line: no spaces,
# quotes or control characters, bounded); otherwise a fresh one replaces it.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteTemplates:
    """Finds the template of a path without routing it: for what a middleware answers
    before routing (a 429 from shedding) and for WebSockets refused before a route runs.
    Built once from the app's routes (FastAPI's route contexts: prefixes applied)."""

    def __init__(self, app: object):
        routes = getattr(getattr(app, "router", None), "routes", [])
        self._routes: list[tuple[re.Pattern[str], str, frozenset[str] | None, str]] = []
        for ctx in iter_route_contexts(routes):
            template = ctx.path_format
            if not template:
                continue
            original = ctx.original_route
            websocket = isinstance(original, APIWebSocketRoute | WebSocketRoute)
            methods = getattr(original, "methods", None)
            self._routes.append((compile_path(template)[0], "websocket" if websocket else "http",
                                 frozenset(methods) if methods else None, template))

    def find(self, scope: Scope) -> str:
        path, partial = scope.get("path", ""), None
        for regex, kind, methods, template in self._routes:
            if kind != scope["type"] or not regex.match(path):
                continue
            if methods is None or scope.get("method") in methods:
                return template
            partial = partial or template  # the path matches, the method does not (a 405)
        return partial or metrics.UNMATCHED


def route_template(scope: Scope, templates: RouteTemplates) -> str:
    """The template of the route serving ``scope``: the one routing chose, else the first
    whose path matches; ``<unmatched>`` for any other path."""
    template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) else templates.find(scope)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _request_id(headers: dict[str, str]) -> str:
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _CLIENT_REQUEST_ID.match(given) else uuid.uuid4().hex


class Observability:
    """Request id, server span, HTTP and WebSocket metrics, one access line: see above."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self._templates: RouteTemplates | None = None
        self._tenants: metrics.TenantLabels | None = None

    def _route(self, scope: Scope) -> str:
        if self._templates is None:  # the routes are all in place once requests come
            self._templates = RouteTemplates(scope.get("app"))
        return route_template(scope, self._templates)

    async def _tenant_labels(self, scope: Scope) -> metrics.TenantLabels:
        if self._tenants is None:
            services = scope["app"].state.container.services
            self._tenants = metrics.TenantLabels(
                lambda: [t.id for t in list_tenants(services)])
        now = time.monotonic()
        if self._tenants.never_loaded:  # the first request waits for the list, off the loop
            await run_in_threadpool(self._tenants.refresh, now)
        elif self._tenants.due(now):
            # Later re-reads go on in the background: a database that hangs (an outage)
            # must not hold a request, least of all /healthz or /metrics.
            self._tenants.refresh_started(now)
            asyncio.get_running_loop().run_in_executor(None, self._tenants.refresh, now)
        return self._tenants

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        request_id = _request_id(headers)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        rid_token = request_id_var.set(request_id)
        span = tracer().start_span(f"{method}", context=extract(headers), kind=SpanKind.SERVER,
                                   attributes={"http.request.method": method})
        ctx_token = otel_context.attach(trace.set_span_in_context(span))
        metrics.HTTP_IN_FLIGHT.inc()
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaping the app is a 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        escaped = True
        try:
            with edge_record() as ran_as:
                await self.app(scope, receive, send_with_id)
            escaped = False
        finally:
            duration_s = time.perf_counter() - started
            metrics.HTTP_IN_FLIGHT.dec()
            route = self._route(scope)
            # The tenant list is read only for a request that ran as a tenant (probes and
            # scrapes never touch it), and after it ran: a tenant created since the app's
            # first request is known to the first list read.
            tenant = (metrics.NO_TENANT if ran_as.tenant is None
                      else (await self._tenant_labels(scope)).label(ran_as.tenant))
            metrics.HTTP_REQUESTS.labels(method, route, f"{status // 100}xx", tenant).inc()
            metrics.HTTP_DURATION.labels(method, route, tenant).observe(duration_s)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            if ran_as.tenant is not None:
                span.set_attribute(TENANT_ATTRIBUTE, ran_as.tenant)
            server_span_error(span, status)
            access_log.info("%s %s %d", method, route, status, extra={
                "method": method, "route": route, "status": status,
                "duration_ms": round(duration_s * 1000, 3), "tenant": ran_as.tenant})
            span.end()
            if not escaped:
                otel_context.detach(ctx_token)
                request_id_var.reset(rid_token)
            # else: left set for the app's last-resort handler (outside every middleware),
            # so its "unhandled error" line carries the ids; the request's task ends there.

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(_headers(scope))
        rid_token = request_id_var.set(request_id)
        route: str | None = None  # known once routed: at the accept
        started = time.perf_counter()

        async def send_counted(message: Message) -> None:
            nonlocal route
            if message["type"] == "websocket.accept" and route is None:
                route = self._route(scope)
                metrics.WEBSOCKETS.labels(route).inc()
            await send(message)

        ran_as = None
        try:
            with edge_record() as ran_as:
                await self.app(scope, receive, send_counted)
        finally:
            accepted = route is not None
            if route is not None:
                metrics.WEBSOCKETS.labels(route).dec()
            else:
                route = self._route(scope)
            access_log.info("WEBSOCKET %s %s", route, "closed" if accepted else "refused",
                            extra={"method": "WEBSOCKET", "route": route,
                                   "accepted": accepted,
                                   "tenant": ran_as.tenant if ran_as else None,
                                   "duration_ms": round((time.perf_counter() - started) * 1000,
                                                        3)})
            request_id_var.reset(rid_token)


def install(app: FastAPI, exposition: metrics.Exposition) -> None:
    """Adds ``GET /metrics`` (left out of the OpenAPI schema: it is text for Prometheus,
    not part of the API) and the middleware; call after every other ``add_middleware``."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(exposition.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    app.add_middleware(Observability)


