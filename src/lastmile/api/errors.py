"""One error handler: domain errors and validation errors become problem+json."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from lastmile.adapters.outages import as_outage, driver_errors
from lastmile.core.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PaymentDeclined,
    Unauthorized,
)

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
_STATUS = {InvalidInput: 422, NotFound: 404, Conflict: 409, Forbidden: 403, Unauthorized: 401,
           DependencyUnavailable: 503, PaymentDeclined: 402}


class Problem(BaseModel):
    """An error answer (RFC 9457 problem+json) with our stable ``code``."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    code: str
    detail: str
    field: str | None = None


_SCHEMA = {"schema": Problem.model_json_schema()}
# Documented on every operation of the routers, so clients (and schemathesis's status-code
# and schema checks) know the error answers; 422 replaces FastAPI's own validation shape,
# which this handler never sends.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {PROBLEM: _SCHEMA}}
    for status, description in ((400, "Refused"), (401, "No valid API key"),
                                (402, "The payment processor declined the payment"),
                                (403, "Not allowed for this key"), (404, "Not found"),
                                (409, "Conflicts with the current state"),
                                (422, "Invalid input, naming the field"),
                                (429, "Rate limited or shed under overload: see Retry-After"),
                                (503, "A dependency (database, redis, nats) is down or too "
                                 "slow; retry after Retry-After seconds"))
}


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"https://lastmile.dev/problems/{code}", "title": code.replace("_", " "),
            "status": status, "code": code, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def unavailable(exc: DependencyUnavailable) -> JSONResponse:
    """503 naming the dependency, with Retry-After (docs/faults.md)."""
    response = problem(503, exc.code, exc.message, **exc.extra)
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "")


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        if isinstance(exc, DependencyUnavailable):
            log.warning("%s unavailable: %s (from %r)", exc.dependency, exc.message,
                        exc.__cause__)
            return unavailable(exc)
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
        return problem(status, exc.code, exc.message, field=exc.field, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": "body" if e.get("type") == "json_invalid"
                   else _field(tuple(e.get("loc", ()))),
                   "rule": e.get("type"), "message": e.get("msg")} for e in exc.errors()]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem(422, "validation_error", f"{first['field']}: {first['message']}",
                       field=first["field"], errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))

    async def driver_error(request: Request, exc: Exception) -> JSONResponse:
        outage = as_outage(exc)
        if outage is None:
            return await unexpected(request, exc)
        log.warning("%s unavailable: %s: %s", outage.dependency, type(exc).__name__, exc)
        return unavailable(outage)

    for error_class in driver_errors():  # raised outside a unit of work (Redis, NATS)
        app.add_exception_handler(error_class, driver_error)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "internal_error", "an unexpected error occurred; it has been logged")
