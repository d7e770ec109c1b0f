"""The overload guard as ASGI middleware around a tiny app whose requests wait on a gate, so
the test decides how many are in flight."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from limits import parse

from lastmile.adapters.ratelimit import RateLimits
from lastmile.api.overload import OverloadGuard, OverloadState, client_key
from lastmile.api.priorities import RouteClassifier
from lastmile.core.overload import AdmissionPolicy, Priority

C, N, B = Priority.CRITICAL, Priority.NORMAL, Priority.BROWSE
TABLE = {("GET", "/menu"): B, ("GET", "/orders/{order_id}"): N, ("POST", "/orders"): C}


class GatedApp:
    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        await self.gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def guarded(policy: AdmissionPolicy, limits: RateLimits | None = None
            ) -> tuple[OverloadState, GatedApp, OverloadGuard]:
    inner = GatedApp()
    state = OverloadState(policy=policy, limits=limits, classifier=RouteClassifier(TABLE))
    return state, inner, OverloadGuard(inner, state=state)


def test_browse_is_shed_with_429_and_retry_after_while_orders_still_go_through():
    async def scenario() -> None:
        state, inner, app = guarded(AdmissionPolicy(browse_max=2, normal_max=3, critical_max=4))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            held = [asyncio.create_task(client.post("/orders")) for _ in range(2)]
            await asyncio.sleep(0.05)
            assert state.in_flight[C] == 2
            menu = await client.get("/menu")
            assert menu.status_code == 429 and menu.headers["retry-after"] == "5"
            assert menu.headers["content-type"] == "application/problem+json"
            body = json.loads(menu.content)
            assert (body["code"], body["priority"], body["retry_after_s"]) == ("overloaded",
                                                                               "browse", 5)
            order = asyncio.create_task(client.post("/orders"))  # 3rd critical: admitted
            await asyncio.sleep(0.05)
            assert (await client.get("/orders/o1")).status_code == 429  # normal shed at 3
            inner.gate.set()
            assert [r.status_code for r in await asyncio.gather(*held, order)] == [200] * 3
            assert (await client.get("/menu")).status_code == 200  # drained: browse is back
        assert state.in_flight == {C: 0, N: 0, B: 0}
        assert state.shed == {(B, "overload"): 1, (N, "overload"): 1}
        assert state.admitted == {C: 3, N: 0, B: 1}

    asyncio.run(scenario())


def test_a_client_over_its_limit_gets_429_naming_the_limit_and_the_wait():
    async def scenario() -> None:
        limits = RateLimits({B: parse("2/minute")}, now=time.time)
        state, inner, app = guarded(AdmissionPolicy(), limits)
        inner.gate.set()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            alice = {"Authorization": "Bearer key-alice"}
            codes = [(await client.get("/menu", headers=alice)).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
            refused = await client.get("/menu", headers=alice)
            body = json.loads(refused.content)
            assert body["code"] == "rate_limited" and body["limit"] == "2 per 1 minute"
            assert 55 <= int(refused.headers["retry-after"]) <= 60
            # another key has its own bucket, and the limit is per class
            assert (await client.get("/menu", headers={"X-Api-Key": "bob"})).status_code == 200
            assert (await client.post("/orders", headers=alice)).status_code == 200
        assert state.shed == {(B, "rate_limit"): 2} and state.in_flight[B] == 0

    asyncio.run(scenario())


def test_the_client_is_its_api_key_else_its_address():
    bearer = {"type": "http", "headers": [(b"authorization", b"Bearer abc")],
              "client": ("10.0.0.1", 5)}
    header = {"type": "http", "headers": [(b"x-api-key", b"abc")], "client": ("10.0.0.2", 5)}
    anonymous = {"type": "http", "headers": [], "client": ("10.0.0.1", 5)}
    assert client_key(bearer) == client_key(header) != client_key(anonymous) == "ip:10.0.0.1"
    assert "abc" not in client_key(bearer)  # the key itself never becomes a Redis key


def test_a_websocket_handshake_refused_under_overload_is_closed_try_again_later():
    async def scenario() -> list[dict[str, object]]:
        state = OverloadState(policy=AdmissionPolicy(browse_max=1, normal_max=1, critical_max=1),
                              limits=None,
                              classifier=RouteClassifier({("WS", "/feed"): Priority.NORMAL}))
        state.in_flight[C] = 1  # one request in flight fills every ceiling here
        sent: list[dict[str, object]] = []

        async def never_called(scope, receive, send) -> None:
            raise AssertionError("a refused handshake must not reach the app")

        async def receive() -> dict[str, object]:
            return {"type": "websocket.connect"}

        async def send(message) -> None:
            sent.append(message)

        await OverloadGuard(never_called, state=state)(
            {"type": "websocket", "path": "/feed", "headers": []}, receive, send)
        assert state.shed == {(N, "overload"): 1} and state.in_flight[N] == 0
        return sent

    assert asyncio.run(scenario()) == [{"type": "websocket.close", "code": 1013}]
