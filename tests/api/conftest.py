from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from lastmile.api.app import create_app


@dataclass
class Api:
    client: TestClient
    platform: object
    keys: dict[str, str]

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}


@pytest.fixture
def api(sqlite_platform) -> Iterator[Api]:
    p = sqlite_platform
    s = p.seed
    keys = {
        "consumer": p.key("consumer", s.consumer_ids[0]),
        "consumer2": p.key("consumer", s.consumer_ids[1]),
        "merchant": p.key("merchant", s.merchant_ids[0]),
        "merchant2": p.key("merchant", s.merchant_ids[1]),
        "courier": p.key("courier", s.courier_ids[0]),
        "courier2": p.key("courier", s.courier_ids[1]),
        "ops": p.key("ops", "ops-1"),
    }
    with TestClient(create_app(p.container, start_workers=False)) as client:
        warm_up(client)
        yield Api(client=client, platform=p, keys=keys)


def warm_up(client: TestClient) -> None:
    """Answer one request before the test's: the first builds the app's routes (FastAPI does
    it lazily, ~0.1 s of CPU), which on a loaded machine (tests on parallel workers) could take
    a test's first request past the API's 8 s deadline (a 503 the test is not about)."""
    client.get("/healthz")
