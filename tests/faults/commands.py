"""The process commands the fault tests start, in one place.

Today the platform runs as ``lastmile serve`` (an API process) and, for dispatch, a second
``lastmile serve --dispatch-every 1`` process on the same database. When the scale-out
profile lands these become ``lastmile serve --profile scale --workers N`` and
``lastmile dispatcher``: change them here and every fault test follows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LASTMILE = [sys.executable, "-m", "lastmile.cli"]


def serve_cmd(port: int, *, dispatch_every: float | None = None) -> list[str]:
    """An API process on 127.0.0.1:``port``; with ``dispatch_every`` it also dispatches."""
    extra = [] if dispatch_every is None else ["--dispatch-every", str(dispatch_every)]
    return [*LASTMILE, "serve", "--host", "127.0.0.1", "--port", str(port), *extra]


def dispatcher_cmd(port: int) -> list[str]:
    """A dispatcher process. Today: a second server that runs the dispatch loop every
    second (its HTTP port only answers /healthz for the test's readiness wait)."""
    return serve_cmd(port, dispatch_every=1)


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
    if nats_url is not None:
        env["LASTMILE_NATS_URL"] = nats_url
    return env
