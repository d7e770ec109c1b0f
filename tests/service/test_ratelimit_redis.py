"""Rate limits in Redis are shared: two API instances spend from one bucket per client
(real Redis, a unique key prefix per test, removed afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace

import pytest
import redis
from fastapi.testclient import TestClient

from databases import redis_prefix
from lastmile.api.app import create_app

pytestmark = pytest.mark.redis
MERCHANTS = {"lat": 37.77, "lng": -122.42}


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix("rl") as (_, name):
        yield name


def test_two_app_instances_share_each_clients_bucket(sqlite_platform, prefix):
    p = sqlite_platform
    key = {"Authorization": f"Bearer {p.key('consumer', p.seed.consumer_ids[0])}"}
    other = {"Authorization": f"Bearer {p.key('consumer', p.seed.consumer_ids[1])}"}
    p.container.settings = replace(p.container.settings, redis_url="redis://127.0.0.1:6379/0",
                                   redis_prefix=prefix, rate_limit_browse="3/minute")
    with ExitStack() as stack:
        a, b = (stack.enter_context(TestClient(create_app(p.container, start_workers=False)))
                for _ in range(2))
        codes = [c.get("/v1/consumer/merchants", headers=key, params=MERCHANTS).status_code
                 for c in (a, b, a, b)]
        assert codes == [200, 200, 200, 429]
        refused = a.get("/v1/consumer/merchants", headers=key, params=MERCHANTS)
        assert refused.status_code == 429 and refused.json()["limit"] == "3 per 1 minute"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert b.get("/v1/consumer/merchants", headers=other, params=MERCHANTS).status_code == 200
        assert a.get("/v1/ops/overload", headers={"Authorization": "Bearer x"}).status_code == 401
    r = redis.Redis(host="127.0.0.1", port=6379)
    try:
        assert list(r.scan_iter(match=f"{prefix}ratelimit*")), "the buckets live in Redis"
    finally:
        r.close()


def test_an_unreachable_redis_lets_requests_through_fast_instead_of_hanging(sqlite_platform):
    p = sqlite_platform
    key = {"Authorization": f"Bearer {p.key('consumer', p.seed.consumer_ids[0])}"}
    # a port nothing listens on: the limiter fails open; admission control still bounds load
    p.container.settings = replace(p.container.settings, redis_url="redis://127.0.0.1:1/0",
                                   rate_limit_browse="1/minute")
    app = create_app(p.container, start_workers=False)
    with TestClient(app) as client:
        codes = [client.get("/v1/consumer/merchants", headers=key, params=MERCHANTS).status_code
                 for _ in range(3)]
    assert codes == [200, 200, 200]
    # one failed Redis call; the next requests skipped the limiter instead of timing out again
    assert app.state.overload.limits.storage_failures == 1
