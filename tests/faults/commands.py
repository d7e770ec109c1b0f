"""The process commands the fault tests start, in one place.

An API process is ``lastmile serve`` (the embedded profile on PostgreSQL, for the tests of
one server against a cut) or ``lastmile serve --profile scale --workers 2`` (PostgreSQL,
Redis and NATS; the surge); dispatch runs in ``lastmile dispatcher`` processes, which hold
their regions by lease.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LASTMILE = [sys.executable, "-m", "lastmile.cli"]


def serve_cmd(port: int, *, dispatch_every: float | None = None) -> list[str]:
    """An API process on 127.0.0.1:``port``; with ``dispatch_every`` it also dispatches."""
    extra = [] if dispatch_every is None else ["--dispatch-every", str(dispatch_every)]
    return [*LASTMILE, "serve", "--host", "127.0.0.1", "--port", str(port), *extra]


def scale_cmd(port: int, *, workers: int = 2) -> list[str]:
    """The scale profile: ``workers`` API processes behind one port (needs Redis and NATS
    in the environment)."""
    return [*serve_cmd(port), "--profile", "scale", "--workers", str(workers)]


DISPATCH_TTL_S = 3.0  # a killed dispatcher's regions pass on within TTL + TTL/3


def dispatcher_cmd(port: int) -> list[str]:
    """A dispatcher worker (no HTTP port: ready once it prints its banner)."""
    del port
    return [*LASTMILE, "dispatcher", "--every", "1", "--ttl", str(DISPATCH_TTL_S)]


def env_for(*, data_dir: Path, database_url: str, redis_url: str | None = None,
            redis_prefix: str | None = None, nats_url: str | None = None,
            relay_lease_s: float = 3.0) -> dict[str, str]:
    """The environment of a platform process: its servers by URL (the tests point them at a
    FaultProxy), the shared data dir (one signing key for all processes), short relay
    leases so a killed process's claimed events come back within the test's bound."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTMILE_")}
    env.update({"PYTHONPATH": str(ROOT / "src"), "LASTMILE_DATA_DIR": str(data_dir),
                "LASTMILE_DATABASE_URL": database_url,
                "LASTMILE_RELAY_LEASE_S": str(relay_lease_s)})
    if redis_url is not None:
        env["LASTMILE_REDIS_URL"] = redis_url
        env["LASTMILE_REDIS_PREFIX"] = redis_prefix or "lastmile:"
    if nats_url is not None:  # a stream and subjects of this test's own
        env["LASTMILE_NATS_URL"] = nats_url
        tag = uuid.uuid4().hex[:10]
        env["LASTMILE_NATS_STREAM"] = f"FAULT_{tag}"
        env["LASTMILE_NATS_PREFIX"] = f"fault{tag}"
    return env
