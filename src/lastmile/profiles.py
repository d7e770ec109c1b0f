"""Runtime profiles: what each requires, checked before anything starts.

- ``embedded`` (default): one process. SQLite in the data dir unless a database URL
  is given; in-process bus; live state in memory unless a Redis URL is given.
- ``scale``: PostgreSQL, Redis and NATS JetStream, all three required. It never falls
  back to SQLite or an in-process store: a missing or wrong URL stops the start with a
  message naming it, because a silent fallback would split the state between
  processes that each believe they are the platform.
"""

from __future__ import annotations

from lastmile.settings import Settings

EMBEDDED, SCALE = "embedded", "scale"
PROFILES = (EMBEDDED, SCALE)
# A process's connection pool: at most this many idle connections (today's default),
# and as many again in overflow under a burst.
MAX_POOL_SIZE = 10


class ProfileError(ValueError):
    """The settings do not make a platform this profile can run; the message says why."""


def check_profile(settings: Settings) -> None:
    """Raise ``ProfileError`` naming every missing or conflicting setting."""
    if settings.profile not in PROFILES:
        raise ProfileError(f"unknown profile {settings.profile!r} (LASTMILE_PROFILE or "
                           f"--profile): expected one of {', '.join(PROFILES)}")
    if settings.workers < 1:
        raise ProfileError(f"workers must be >= 1 (got {settings.workers})")
    if settings.profile == EMBEDDED:
        if settings.workers > 1:
            raise ProfileError(
                f"{settings.workers} workers need the scale profile: the embedded profile "
                "keeps the event bus, live positions and tracking state in one process "
                "(and SQLite takes one writer at a time), so a second process would not "
                "see them. Use --profile scale with PostgreSQL, Redis and NATS, or one worker.")
        return
    problems = []
    url = settings.database_url or ""
    if not url:
        problems.append("LASTMILE_DATABASE_URL (PostgreSQL) is not set")
    elif not url.startswith("postgresql"):
        problems.append(f"LASTMILE_DATABASE_URL must be PostgreSQL (postgresql://...), got "
                        f"{settings.redacted_database_url().split(':', 1)[0]}:...")
    if not settings.redis_url:
        problems.append("LASTMILE_REDIS_URL (Redis) is not set")
    if not settings.nats_url:
        problems.append("LASTMILE_NATS_URL (NATS JetStream) is not set")
    if problems:
        raise ProfileError("the scale profile needs PostgreSQL, Redis and NATS and never falls "
                           "back to SQLite or in-process stores: " + "; ".join(problems))
    if settings.db_max_connections < 2 * settings.workers:
        raise ProfileError(
            f"LASTMILE_DB_MAX_CONNECTIONS={settings.db_max_connections} cannot give "
            f"{settings.workers} processes 2 connections each; raise it or run fewer workers")


def pool_size(settings: Settings) -> int:
    """Idle connections per process: ``min(10, db_max_connections // (2 * workers))``.

    A pool holds ``pool_size`` connections plus as many in overflow, so N processes
    hold at most ``db_max_connections`` together. One process keeps today's 10 + 10.
    """
    return max(1, min(MAX_POOL_SIZE, settings.db_max_connections // (2 * settings.workers)))
