"""``lastmile serve --profile scale --workers N``: N stateless API processes.

The parent checks the profile and that PostgreSQL, Redis and NATS answer, migrates
the schema once, makes sure the signing key exists, writes its options into the
environment and hands over to uvicorn's supervisor, which starts N workers (each
imports ``lastmile.api.factory:create_app_from_env`` and builds its own container),
replaces a worker that dies, and on SIGTERM or SIGINT stops them gracefully:
each stops accepting, lets in-flight requests finish (at most
``GRACEFUL_SHUTDOWN_S``), then stops its relay and hub.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from lastmile.adapters.telemetry.metrics import prepare_multiprocess_dir
from lastmile.profiles import check_profile, pool_size
from lastmile.settings import Settings

FACTORY = "lastmile.api.factory:create_app_from_env"
GRACEFUL_SHUTDOWN_S = 20
# A worker that does not answer the supervisor for this long is replaced. uvicorn's 5 s
# default kills workers still importing on a busy machine (seen on 2 shared cores).
HEALTHCHECK_S = 30
CONNECT_TIMEOUT_S = 3


def worker_env(settings: Settings) -> dict[str, str]:
    """The options a worker cannot receive as arguments, as the variables it reads."""
    env = {
        "LASTMILE_PROFILE": settings.profile,
        "LASTMILE_WORKERS": str(settings.workers),
        "LASTMILE_DATA_DIR": str(settings.data_dir.resolve()),
        "LASTMILE_DB_MAX_CONNECTIONS": str(settings.db_max_connections),
    }
    if settings.database_url:
        env["LASTMILE_DATABASE_URL"] = settings.database_url
    return env


def unreachable(settings: Settings) -> list[str]:
    """Each configured server that does not answer within ``CONNECT_TIMEOUT_S``, named
    (host and port only: never the credentials a URL may carry). The same probes as
    ``/readyz`` (``adapters.probes``)."""
    from lastmile.adapters.db.engine import make_engine
    from lastmile.adapters.outages import redis_client
    from lastmile.adapters.probes import check, database_probe, nats_probe, redis_probe

    named: dict[str, str] = {}
    probes = {}
    closers: list[Callable[[], object]] = []
    if settings.database_url:
        engine = make_engine(settings.database_url, pool_size=1)
        closers.append(engine.dispose)
        named["database"] = f"PostgreSQL at {settings.redacted_database_url()}"
        probes["database"] = database_probe(engine)
    if settings.redis_url:
        client = redis_client(settings.redis_url)
        closers.append(client.close)
        named["redis"] = f"Redis at {_host_of(settings.redis_url)}"
        probes["redis"] = redis_probe(client)
    if settings.nats_url:
        named["nats"] = f"NATS at {_host_of(settings.nats_url)}"
        probes["nats"] = nats_probe(settings.nats_url, timeout_s=CONNECT_TIMEOUT_S)
    try:
        results = check(probes, bound_s=CONNECT_TIMEOUT_S)
    finally:
        for close in closers:
            close()
    return [f"{named[name]} does not answer ({result.error})"
            for name, result in results.items() if not result.ok]


def _host_of(url: str) -> str:
    """host:port only: never the credentials a URL may carry."""
    parts = urlsplit(url.split(",")[0])
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def prepare(settings: Settings) -> None:
    """Once, in the parent: migrate the schema and create the data-dir signing key if
    none is configured, so N workers neither race to migrate nor each make a key."""
    from lastmile.adapters.db.engine import make_engine, migrate
    from lastmile.adapters.secret_key import signing_key

    assert settings.database_url is not None  # check_profile: the scale profile has one
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    signing_key(settings)


def run(settings: Settings, *, host: str, port: int,
        announce: Callable[[str], object] = print) -> None:
    """Serve the scale profile until SIGTERM/SIGINT; raises ``ProfileError`` or
    ``ConnectionError`` (with the reasons) before starting anything."""
    import uvicorn

    check_profile(settings)
    problems = unreachable(settings)
    if problems:
        raise ConnectionError("; ".join(problems))
    prepare(settings)
    announce(banner(settings, host=host, port=port))
    os.environ.update(worker_env(settings))  # spawned workers inherit the environment
    if settings.workers > 1:  # /metrics of any worker sums every worker's files
        prepare_multiprocess_dir(Path(tempfile.mkdtemp(prefix="lastmile-metrics-")))
    # log_config=None keeps the workers' structured, redacted logs; the access log is the
    # observability middleware's (route templates, request ids), not uvicorn's raw paths.
    uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=settings.workers,
                log_level="warning", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                timeout_worker_healthcheck=HEALTHCHECK_S, log_config=None, access_log=False)


def banner(settings: Settings, *, host: str, port: int) -> str:
    return (f"lastmile ({settings.profile} profile, {settings.workers} API process(es), "
            f"{pool_size(settings)}+{pool_size(settings)} database connections each) on "
            f"http://{host}:{port}  (docs: /docs; database {settings.redacted_database_url()})")
