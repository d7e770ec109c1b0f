"""Readiness probes: can this process reach each server it depends on, right now?

Each probe does the smallest real round trip (``select 1``, ``PING``, NATS's ``INFO`` line)
within its driver's bounds and raises when the server is down or too slow. ``check`` runs
them side by side and gives up on any still running after ``bound_s``, so a readiness
answer never takes longer than that, whatever the outage.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from sqlalchemy.engine import Engine

from lastmile.adapters.outages import as_outage

Probe = Callable[[], None]
NATS_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    ok: bool
    latency_ms: float
    error: str | None = None


def database_probe(engine: Engine) -> Probe:
    def probe() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")

    return probe


def redis_probe(client: redis.Redis) -> Probe:
    def probe() -> None:
        client.ping()

    return probe


def nats_probe(url: str, timeout_s: float = NATS_TIMEOUT_S) -> Probe:
    """A NATS server greets every new connection with an ``INFO`` line, before any
    credentials: reading it proves the server accepts and answers connections."""
    first = url.split(",")[0].strip()
    parts = urlsplit(first if "://" in first else f"nats://{first}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222

    def probe() -> None:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            greeting = sock.recv(5)
        if not greeting.startswith(b"INFO"):
            raise ConnectionError(f"NATS did not greet with INFO (got {greeting[:5]!r})")

    return probe


def check(probes: Mapping[str, Probe], bound_s: float) -> dict[str, ProbeResult]:
    """Run every probe at once; one unfinished after ``bound_s`` counts as failed."""
    if not probes:
        return {}
    pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="probe")
    try:
        futures = {name: pool.submit(_timed, probe) for name, probe in probes.items()}
        wait(futures.values(), timeout=bound_s)
        results = {}
        for name, future in futures.items():
            if not future.done():
                results[name] = ProbeResult(ok=False, latency_ms=round(bound_s * 1000, 1),
                                            error=f"no answer within {bound_s} s")
                continue
            elapsed_ms, exc = future.result()
            if exc is None:
                results[name] = ProbeResult(ok=True, latency_ms=elapsed_ms)
                continue
            outage = as_outage(exc)
            results[name] = ProbeResult(ok=False, latency_ms=elapsed_ms, error=(
                outage.message if outage is not None else type(exc).__name__))
        return results
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a stuck probe ends on its own timeout



def _timed(probe: Probe) -> tuple[float, Exception | None]:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # the probe's answer is the failure itself
        return round((time.perf_counter() - started) * 1000, 1), exc
    return round((time.perf_counter() - started) * 1000, 1), None
