"""A second, test tenant beside the ``platform`` fixture's live default tenant."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lastmile.app import queries
from lastmile.app.ordering import LineRequest, OrderRequest
from lastmile.app.tenancy import acting_as
from lastmile.app.tenants import ensure_tenant
from lastmile.core.geo import Point
from lastmile.sim.seed import SeedSummary, seed_demo, tenant_region_id

TEST_TENANT = "doortest:probe"
DROP = Point(lat=37.445, lng=-122.15)


def seed_test_tenant(platform: Any, tenant: str = TEST_TENANT) -> SeedSummary:
    """The test tenant (kind test), seeded with its own region and people."""
    svc = platform.services
    assert ensure_tenant(svc, tenant).is_test
    with acting_as(tenant):
        return seed_demo(svc, seed=6, merchants=2, consumers=2, couriers=2,
                         region_id=tenant_region_id(tenant))


def an_order_request(platform: Any, *, consumer_id: str, merchant_id: str,
                     merchant_tenant: str | None = None) -> OrderRequest:
    """One item of the merchant's menu (read in ``merchant_tenant``, default: current)."""
    if merchant_tenant is None:
        m = queries.get_merchant(platform.services, merchant_id)
    else:
        with acting_as(merchant_tenant):
            m = queries.get_merchant(platform.services, merchant_id)
    return OrderRequest(consumer_id=consumer_id, merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=1),), dropoff=DROP)


class Receiver:
    """A local HTTP server that records every request it gets (a webhook receiver)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((self.path, dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        thread.join(5)
