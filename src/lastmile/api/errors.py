"""One error handler: domain errors and validation errors become problem+json."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from lastmile.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
_STATUS = {InvalidInput: 422, NotFound: 404, Conflict: 409, Forbidden: 403, Unauthorized: 401}


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
                                (403, "Not allowed for this key"), (404, "Not found"),
                                (409, "Conflicts with the current state"),
                                (422, "Invalid input, naming the field"),
                                (429, "Rate limited or shed under overload: see Retry-After"))
}


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"https://lastmile.dev/problems/{code}", "title": code.replace("_", " "),
            "status": status, "code": code, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "")


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
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

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "internal_error", "an unexpected error occurred; it has been logged")
