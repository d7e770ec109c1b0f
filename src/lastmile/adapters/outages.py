"""The one place that decides which driver errors mean "a dependency is down or too slow".

PostgreSQL (SQLAlchemy/psycopg), Redis (redis-py) and NATS (nats-py) each raise their own
errors when their server is unreachable, drops the connection, or answers too late. The
shell turns those, and only those, into ``DependencyUnavailable`` (503 with Retry-After):
the unit of work for the database, the API's error handler for everything else, the
workers' loops for their log lines. Messages name the dependency, never a host or a
driver's text (which can carry addresses): the server logs those. A bug (a syntax error, a broken constraint) is never
mistaken for an outage: it stays a 409 or a 500.
"""

from __future__ import annotations

import sqlite3

import redis
import redis.exceptions
import sqlalchemy as sa

from lastmile.core.errors import DependencyUnavailable

RETRY_AFTER_S = 2  # what a client is told to wait: about one pool reconnect attempt

# SQLSTATE classes and codes that mean "the server cannot serve this now", not "this request
# is wrong": connection exceptions (08xxx), insufficient resources (53xxx, e.g. too many
# connections), operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03
# cannot connect now), 57014 query_canceled (our statement_timeout fired) and 55P03
# lock_not_available (our lock_timeout fired).
_PG_OUTAGE_CLASSES = ("08", "53")
_PG_OUTAGE_CODES = frozenset({"57P01", "57P02", "57P03", "57014", "55P03"})
_PG_TOO_SLOW = frozenset({"57014", "55P03"})


def _nats_errors() -> tuple[type[Exception], ...]:
    try:  # nats-py is a dependency, but only the scale profile ever imports it
        import nats.errors
        import nats.js.errors
    except ImportError:  # pragma: no cover - the package pins nats-py
        return ()
    # NoResponders: no JetStream answered the publish (the server is up without it, or the
    # stream's leader is gone); ServiceUnavailable: JetStream said so itself.
    return (nats.errors.TimeoutError, nats.errors.ConnectionClosedError,
            nats.errors.NoServersError, nats.errors.StaleConnectionError,
            nats.errors.OutboundBufferLimitError, nats.errors.ConnectionDrainingError,
            nats.errors.ConnectionReconnectingError, nats.errors.FlushTimeoutError,
            nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError,
            nats.js.errors.NoStreamResponseError)


def driver_errors() -> tuple[type[Exception], ...]:
    """The exception classes ``as_outage`` may map (the API registers a handler for each)."""
    return (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError,
            redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, *_nats_errors())


def as_outage(exc: BaseException | None) -> DependencyUnavailable | None:
    """The ``DependencyUnavailable`` that ``exc`` (or the error it was raised from) means,
    or None when it is not an outage."""
    seen = 0
    while exc is not None and seen < 3:
        if isinstance(exc, DependencyUnavailable):
            return exc
        found = _database(exc) or _redis(exc) or _nats(exc)
        if found is not None:
            return found
        exc, seen = exc.__cause__, seen + 1
    return None


def _database(exc: BaseException) -> DependencyUnavailable | None:
    if isinstance(exc, sa.exc.TimeoutError):  # QueuePool: no connection free in pool_timeout
        return _down("database", "no database connection became free in time (the pool is "
                     "exhausted: the database is slow or unreachable)")
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    if exc.connection_invalidated:
        return _down("database", "the connection to the database was lost")
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig):
        return _down("database", "the database stayed locked by another writer")
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _PG_TOO_SLOW:
        return _down("database", f"the database did not answer in time ({sqlstate})")
    if sqlstate in _PG_OUTAGE_CODES or (sqlstate or "")[:2] in _PG_OUTAGE_CLASSES:
        return _down("database", f"the database refused service ({sqlstate})")
    if sqlstate is None and isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) \
            and not isinstance(orig, sqlite3.Error):
        # psycopg raises these without a SQLSTATE when the client side fails: the server is
        # unreachable, the connect timed out, or the connection closed under a query.
        return _down("database", "the database is unreachable")
    return None


def _redis(exc: BaseException) -> DependencyUnavailable | None:
    if isinstance(exc, redis.exceptions.TimeoutError):
        return _down("redis", "Redis did not answer in time")
    if isinstance(exc, redis.exceptions.ConnectionError):
        return _down("redis", "Redis is unreachable")
    return None


def _nats(exc: BaseException) -> DependencyUnavailable | None:
    errors = _nats_errors()
    if errors and isinstance(exc, errors):
        return _down("nats", f"NATS is unreachable or too slow ({type(exc).__name__})")
    return None


def _down(dependency: str, message: str) -> DependencyUnavailable:
    return DependencyUnavailable(dependency, message, retry_after_s=RETRY_AFTER_S)


# Redis bounds (docs/faults.md): a command fails after REDIS_TIMEOUT_S without an answer
# (Redis answers in well under a millisecond on a LAN), a connect after as long, with one
# quick retry (redis-py's default is 10 retries, which turns a cut into a 50 s hang). No
# health check before reusing an idle pooled connection: the retry already replaces a dead
# one, and a check is one more timeout and retry in front of every command on a silent Redis
# (2.2 s instead of 1.1 s per ping, seen in CI).
REDIS_TIMEOUT_S = 0.5


def redis_client(url: str) -> redis.Redis:
    """A Redis client that fails fast when Redis is down and reconnects when it is back."""
    from redis.backoff import ConstantBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S,
        retry=Retry(ConstantBackoff(0.05), retries=1), health_check_interval=0)
