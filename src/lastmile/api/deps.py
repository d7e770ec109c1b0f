"""Request dependencies: the services and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from lastmile.app import tenancy
from lastmile.app.auth import Principal, authenticate, cached_principal
from lastmile.app.context import Services
from lastmile.core.errors import Forbidden


# `services` and the role check do no I/O: async, they run on the event loop instead of
# each taking a hop through the thread pool (two of a request's four hops, profiled).
async def services(request: Request) -> Services:
    return cast(Services, request.app.state.container.services)  # app.state is untyped


ServicesDep = Annotated[Services, Depends(services)]


async def principal(
    svc: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    x_lastmile_tenant: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller, and the tenant the rest of the request runs as (the edge: set here once,
    read by the storage layer). A key seen lately is answered on the event loop; only a
    lookup goes to a thread."""
    key = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    known = cached_principal(svc, key)
    if known is None:
        known = await run_in_threadpool(authenticate, svc, key)
    who = known.as_tenant(x_lastmile_tenant)  # another tenant only if the key may: else 403
    tenancy.enter(who.tenant)  # this request's task: the endpoint runs after, in it
    return who


def role(name: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role != name:
            raise Forbidden("wrong_role", f"this endpoint is for {name}s; the key is a {who.role}'s")
        return who

    return check


Consumer = Annotated[Principal, Depends(role("consumer"))]
Merchant = Annotated[Principal, Depends(role("merchant"))]
Courier = Annotated[Principal, Depends(role("courier"))]
Ops = Annotated[Principal, Depends(role("ops"))]
Anyone = Annotated[Principal, Depends(principal)]
