"""CPU the observability middleware adds to one HTTP request, in microseconds.

The middleware (``lastmile.api.observability.Observability``: request id, server span,
metrics, access line) wraps a bare ASGI app that answers at once, called in a loop on one
event loop, so what is measured is the middleware alone: no network, no routing, no
database. Process CPU time (not wall time: the figure holds on a busy machine), best of
``--repeat`` runs of ``--requests`` requests. The access line goes to /dev/null through
the JSON formatter and the redaction filter, as ``lastmile serve`` writes it.

    .venv/bin/python bench/observability_overhead.py            # ~10 s
    .venv/bin/python bench/observability_overhead.py --quick

The last line: ``{"bare_us", "tracing_off_us", "tracing_memory_us",
"tracing_off_no_access_log_us"}`` (per request; the middleware's cost is each minus bare).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from typing import Any

from lastmile.adapters.telemetry.logs import configure_logging
from lastmile.adapters.telemetry.tracing import configure_tracing
from lastmile.api.observability import Observability

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class _Route:  # what routing leaves in the scope
    path_format = "/v1/consumer/orders/{order_id}"


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = _Route
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request"}


async def _send(_: dict[str, Any]) -> None:
    return None


def _scope() -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/v1/consumer/orders/ord_1",
            "headers": [(b"authorization", b"Bearer lm_con_x"), (b"traceparent", TRACEPARENT)]}


async def _loop(app: Any, n: int) -> None:
    for _ in range(n):
        await app(_scope(), _receive, _send)


def per_request_us(app: Any, requests: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        asyncio.run(_loop(app, requests))
        best = min(best, time.process_time() - started)
    return round(best / requests * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 requests, 2 runs")
    args = parser.parse_args()
    n, repeat = (2_000, 2) if args.quick else (args.requests, args.repeat)
    with open("/dev/null", "w") as sink:
        configure_logging("json", stream=sink)
        out = {"bare_us": per_request_us(bare, n, repeat)}
        for mode in ("off", "memory"):
            configure_tracing(mode)
            out[f"tracing_{mode}_us"] = per_request_us(Observability(bare), n, repeat)
        configure_tracing("off")
        logging.getLogger("lastmile.access").setLevel(logging.WARNING)
        out["tracing_off_no_access_log_us"] = per_request_us(Observability(bare), n, repeat)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
