"""WebSocket feeds open with a one-minute signed stream token, so no API key rides in a URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_streams import closed_with, receive

from lastmile.api.app import create_app

REGION_STREAM = "/v1/ops/regions/reg_demo/stream"


@pytest.fixture
def client(sqlite_platform: Any) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_platform.container)) as c:
        yield c


def token_for(client: TestClient, key: str) -> dict[str, Any]:
    r = client.post("/v1/stream-tokens", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_stream_token_opens_the_feed_as_a_subprotocol_or_in_the_query(
        client: TestClient, sqlite_platform: Any) -> None:
    ops = sqlite_platform.key("ops", "ops")
    issued = token_for(client, ops)
    token = issued["token"]
    assert issued["ttl_s"] == 60 and ops not in token
    with client.websocket_connect(REGION_STREAM, subprotocols=[f"bearer.{token}"]) as ws:
        assert receive(ws)["type"] == "stream.hello"
    with client.websocket_connect(f"{REGION_STREAM}?token={token}") as ws:
        assert receive(ws)["type"] == "stream.hello"


def test_a_stream_token_expires_after_a_minute(client: TestClient, sqlite_platform: Any) -> None:
    token = token_for(client, sqlite_platform.key("ops", "ops"))["token"]
    sqlite_platform.clock.advance(61)
    refused = closed_with(client.websocket_connect(f"{REGION_STREAM}?token={token}"))
    assert refused.code == 4401 and "expired" in refused.reason


def test_a_forged_or_altered_stream_token_is_refused(client: TestClient,
                                                     sqlite_platform: Any) -> None:
    token = token_for(client, sqlite_platform.key("courier", sqlite_platform.seed.courier_ids[0])
                      )["token"]
    body, mac = token.split(".")
    import base64
    import json

    raw = json.loads(base64.urlsafe_b64decode(body.removeprefix("lmst_") + "=="))
    forged = "lmst_" + base64.urlsafe_b64encode(
        json.dumps({**raw, "r": "ops"}).encode()).decode().rstrip("=") + "." + mac
    for bad in (forged, token[:-3], "lmst_x.y"):
        assert closed_with(client.websocket_connect(f"{REGION_STREAM}?token={bad}")).code == 4401


def test_a_stream_token_keeps_its_role(client: TestClient, sqlite_platform: Any) -> None:
    ck = sqlite_platform.key("courier", sqlite_platform.seed.courier_ids[0])
    token = token_for(client, ck)["token"]
    assert closed_with(client.websocket_connect(f"{REGION_STREAM}?token={token}")).code == 4403
    with client.websocket_connect("/v1/courier/stream", subprotocols=[f"bearer.{token}"]) as ws:
        assert receive(ws)["type"] == "stream.hello"


def test_a_stream_token_needs_a_valid_key(client: TestClient) -> None:
    r = client.post("/v1/stream-tokens", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
