"""Which errors mean "a dependency is down" (503 with Retry-After naming it) and which do not
(a bug stays a 500, a broken rule a 409); /readyz per dependency; the request deadline."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import nats.errors
import psycopg
import pytest
import redis.exceptions
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lastmile.adapters.outages import as_outage
from lastmile.api.app import create_app
from lastmile.api.readiness import Deadline
from lastmile.bootstrap import build
from lastmile.core.errors import DependencyUnavailable
from lastmile.settings import Settings


class _PgError(Exception):
    def __init__(self, sqlstate: str | None, text: str = "pg says no"):
        super().__init__(text)
        self.sqlstate = sqlstate


def _dbapi(cls: type[sa.exc.DBAPIError], orig: BaseException,
           invalidated: bool = False) -> sa.exc.DBAPIError:
    return cls("select 1", {}, orig, connection_invalidated=invalidated)  # type: ignore[arg-type]


def _dependency(exc: BaseException) -> str | None:
    found = as_outage(exc)
    return None if found is None else found.dependency


@pytest.mark.parametrize(("error", "dependency"), [
    (sa.exc.TimeoutError("QueuePool limit reached"), "database"),
    (_dbapi(sa.exc.OperationalError, _PgError("57014")), "database"),  # statement_timeout
    (_dbapi(sa.exc.OperationalError, _PgError("55P03")), "database"),  # lock_timeout
    (_dbapi(sa.exc.OperationalError, _PgError("08006")), "database"),
    (_dbapi(sa.exc.OperationalError, _PgError("57P01")), "database"),  # admin shutdown
    (_dbapi(sa.exc.OperationalError, _PgError("53300")), "database"),  # too many connections
    (_dbapi(sa.exc.OperationalError, psycopg.OperationalError("connection refused")),
     "database"),
    (_dbapi(sa.exc.ProgrammingError, _PgError("42601"), invalidated=True), "database"),
    (_dbapi(sa.exc.OperationalError, sqlite3.OperationalError("database is locked")),
     "database"),
    (redis.exceptions.ConnectionError("refused"), "redis"),
    (redis.exceptions.TimeoutError("slow"), "redis"),
    (nats.errors.TimeoutError(), "nats"),
    (nats.errors.NoServersError(), "nats"),
    (DependencyUnavailable("nats", "given"), "nats"),
])
def test_outages_name_their_dependency(error: BaseException, dependency: str) -> None:
    assert _dependency(error) == dependency


@pytest.mark.parametrize("error", [
    _dbapi(sa.exc.IntegrityError, _PgError("23505")),
    _dbapi(sa.exc.ProgrammingError, _PgError("42601")),
    _dbapi(sa.exc.OperationalError, sqlite3.OperationalError("no such table: orders")),
    ValueError("a bug"),
    redis.exceptions.ResponseError("WRONGTYPE"),
])
def test_bugs_and_broken_rules_are_not_outages(error: BaseException) -> None:
    assert as_outage(error) is None


def test_an_outage_behind_another_error_is_found_through_its_cause() -> None:
    try:
        try:
            raise redis.exceptions.ConnectionError("refused")
        except redis.exceptions.ConnectionError as inner:
            raise RuntimeError("while moving the courier") from inner
    except RuntimeError as outer:
        assert _dependency(outer) == "redis"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once closed: connects are refused


def test_a_driver_error_in_a_request_answers_503_with_retry_after(tmp_path: Path) -> None:
    container = build(Settings(data_dir=tmp_path))
    app = create_app(container, start_workers=False)

    def boom() -> None:
        raise redis.exceptions.TimeoutError("Timeout reading from socket")

    def bug() -> None:
        raise _dbapi(sa.exc.ProgrammingError, _PgError("42601"))

    app.add_api_route("/boom", boom)
    app.add_api_route("/bug", bug)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.get("/boom")
            assert r.status_code == 503
            assert r.headers["retry-after"] == "2"
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "dependency_unavailable"
            assert r.json()["dependency"] == "redis"
            assert "socket" not in r.json()["detail"]  # the driver's text stays in the log
            assert client.get("/bug").status_code == 500
            assert client.get("/healthz").status_code == 200
    finally:
        container.close()


def test_readyz_reports_each_dependency_and_503_when_redis_is_down(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
                        nats_url=f"nats://127.0.0.1:{_closed_port()}")
    container = build(settings)
    try:
        with TestClient(create_app(container, start_workers=False)) as client:
            # The first request builds the routes (FastAPI does it lazily, ~0.1 s of CPU, many
            # times that on a loaded machine): answered before the clock starts, so the bound
            # times the probes of the dead servers alone.
            client.get("/healthz")
            started = time.monotonic()
            r = client.get("/readyz")
            assert time.monotonic() - started < 3.0
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
            body = r.json()
            assert body["code"] == "dependency_unavailable" and body["dependency"] == "redis"
            deps = body["dependencies"]
            assert deps["database"]["ok"] is True
            assert deps["redis"]["ok"] is False and deps["nats"]["ok"] is False
            assert client.get("/healthz").status_code == 200  # liveness is not readiness
    finally:
        container.close()


def test_readyz_stays_200_degraded_when_only_nats_is_down(tmp_path: Path) -> None:
    container = build(Settings(data_dir=tmp_path, nats_url=f"nats://127.0.0.1:{_closed_port()}"))
    try:
        with TestClient(create_app(container, start_workers=False)) as client:
            r = client.get("/readyz")
            assert r.status_code == 200
            assert r.json()["status"] == "degraded"
            assert r.json()["dependencies"]["nats"]["ok"] is False
    finally:
        container.close()


def test_a_request_past_the_deadline_answers_503_and_a_quick_one_is_untouched() -> None:
    async def slow(_: Request) -> JSONResponse:
        await asyncio.sleep(1.0)
        return JSONResponse({"late": True})

    async def quick(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Deadline(Starlette(routes=[Route("/slow", slow), Route("/quick", quick)]),
                   deadline_s=0.2)

    async def run() -> tuple[httpx.Response, httpx.Response, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            started = time.monotonic()
            late = await client.get("/slow")
            took = time.monotonic() - started
            return late, await client.get("/quick"), took

    late, quick_answer, took = asyncio.run(run())
    assert late.status_code == 503 and late.json()["code"] == "request_timeout"
    assert late.headers["retry-after"] == "2"
    assert took < 0.8
    assert quick_answer.status_code == 200 and quick_answer.json() == {"ok": True}


@pytest.mark.nats
def test_the_nats_probe_reads_the_server_greeting() -> None:
    from lastmile.adapters.probes import nats_probe

    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError:
        pytest.skip("no NATS answers on 127.0.0.1:4222")
    nats_probe("nats://127.0.0.1:4222")()  # raises when the greeting is not INFO
    with pytest.raises(OSError):
        nats_probe(f"nats://127.0.0.1:{_closed_port()}", timeout_s=0.5)()
