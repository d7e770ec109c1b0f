"""Property-based fuzzing of the app's own OpenAPI.

Every operation is called with the key of the role allowed to call it (one table,
``ROLES``, checked against each route's own dependency), so the bodies are exercised,
not refused at the door. Checks: no 5xx, every status code documented, every answer
conforms to its documented schema, and no answer says the key had the wrong role.
A stateful run follows the spec's links (create a delivery, then get/update/cancel it).
Bounded in time by hypothesis settings: well under a minute on a quiet machine.
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.api.app import create_app
from lastmile.api.deps import principal
from lastmile.app import drive, fulfilment, offers, ordering, queries, webhooks
from lastmile.app.auth import issue_api_key
from lastmile.app.ordering import LineRequest, OrderRequest
from lastmile.bootstrap import build
from lastmile.core.delivery.model import Contact
from lastmile.core.delivery.request import DeliveryRequest
from lastmile.core.orders import SYSTEM, Actor, ActorKind
from lastmile.settings import Settings
from lastmile.sim.seed import DEMO_CENTER, seed_demo

ROUTERS = [importlib.import_module(f"lastmile.api.routers.{name}") for name in (
    "consumer", "courier", "dashboard", "dead_letters", "drive", "experiments", "merchant",
    "ops", "overload", "ledger", "payments", "refunds", "reports", "sandbox", "streams", "tenant", "testkit",
    "tracking_page")]
PUBLIC = "public"
ANY_KEY = "any key"  # any role's key (e.g. stream tokens): fuzzed with a consumer's
# The role whose key may call a path, longest prefix first. An operation whose path
# matches none fails the test: a new router must say who calls it.
ROLES: tuple[tuple[str, str], ...] = (
    ("/v1/drive/courier/", "courier"),
    ("/v1/drive/", "merchant"),
    ("/v1/consumer/", "consumer"),
    ("/v1/merchant/", "merchant"),
    ("/v1/courier/", "courier"),
    ("/v1/ops/", "ops"),
    ("/v1/testkit/", "ops"),  # the default tenant's ops key: live, so 403 not_a_test_tenant
    ("/v1/stream-tokens", ANY_KEY),
    ("/v1/payments/stripe/", PUBLIC),  # Stripe's webhooks: signed, no key
    ("/track/", PUBLIC),
    ("/healthz", PUBLIC),
    ("/readyz", PUBLIC),
)


def role_of(path: str) -> str:
    for prefix, role in ROLES:
        if path.startswith(prefix):
            return role
    pytest.fail(f"no role in ROLES for {path}: add its prefix and the role that calls it")


def _app_and_keys(tmp_dir: Path):  # type: ignore[no-untyped-def]
    container = build(Settings(data_dir=tmp_dir), clock=ManualClock(), ids=SequentialIds(),
                      rng=random.Random(1))
    s = seed_demo(container.services, seed=2, merchants=3, consumers=2, couriers=2)
    svc = container.services
    keys = {
        "consumer": issue_api_key(svc, role="consumer", subject_id=s.consumer_ids[0])[1],
        "merchant": issue_api_key(svc, role="merchant", subject_id=s.merchant_ids[0])[1],
        "courier": issue_api_key(svc, role="courier", subject_id=s.courier_ids[0])[1],
        "ops": issue_api_key(svc, role="ops", subject_id="ops")[1],
    }
    return create_app(container, start_workers=False), keys, _known_ids(svc, s)


def _known_ids(svc, s) -> dict[str, list[object]]:  # type: ignore[no-untyped-def]
    """Resources the keys' owners can reach, by the name of the parameter or body field
    that takes their id: random ids only ever meet a 404, these reach the use cases."""
    merchant, courier = s.merchant_ids[0], s.courier_ids[0]
    menu = queries.get_merchant(svc, merchant).menu
    as_merchant = Actor(kind=ActorKind.MERCHANT, id=merchant)
    orders = []
    for i in range(3):
        placed = ordering.place_order(svc, OrderRequest(
            consumer_id=s.consumer_ids[0], merchant_id=merchant, dropoff=DEMO_CENTER,
            lines=(LineRequest(item_id=menu[0].id, quantity=1),)), idempotency_key=f"k{i}")
        orders.append(placed.order.id)
    fulfilment.confirm_order(svc, orders[0], prep_estimate_s=600, actor=as_merchant)
    fulfilment.start_shift(svc, courier, device_id="fuzz-phone", ends_at=svc.clock.now() + 9000,
                           actor=SYSTEM)
    offer = offers.make_offer(svc, courier_id=courier, order_ids=(orders[0],), actor=SYSTEM)
    delivery = drive.create_delivery(svc, DeliveryRequest(
        merchant_id=merchant, external_delivery_id="ext-1", dropoff=DEMO_CENTER,
        contact=Contact(first_name="Ada"), order_value_minor=2500, tip_minor=300))
    endpoint = webhooks.register_endpoint(svc, merchant, url="https://hooks.example.com/x")
    return {
        "order_id": [*orders, delivery.order.id], "order_ids": [[orders[0]], [orders[1]]],
        # Courier 1 and a lost phone, not courier 0 (the key's owner), are the ones ops ban.
        "merchant_id": [merchant], "courier_id": [s.courier_ids[1]], "region_id": [s.region.id],
        "item_id": [i.id for i in menu], "offer_id": [offer.id],
        "external_delivery_id": ["ext-1"], "endpoint_id": [endpoint.id],
        "token": [delivery.delivery.tracking_token],
        "device_id": ["lost-phone"], "url": ["https://hooks.example.com/fuzz"],
    }


def headers_for(path: str) -> dict[str, str]:
    role = role_of(path)
    if role == PUBLIC:
        return {}
    return {"Authorization": f"Bearer {KEYS['consumer' if role == ANY_KEY else role]}"}


# The pytest plugin of schemathesis 4.32 does not load under pytest 9.2 ('_nodeid'),
# so the operations are parametrized here and each runs its own hypothesis search.
# One app (and database) serves the schema and the calls, so the keys are valid.
APP, KEYS, KNOWN = _app_and_keys(Path(tempfile.mkdtemp(prefix="lastmile-schema-")))
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
OPERATIONS = [r.ok() for r in SCHEMA.get_all_operations()]
SEEN: Counter[tuple[str, int]] = Counter()  # (operation, status) over the whole file


@schemathesis.check
def answered_as_the_keys_role(ctx, response, case):  # type: ignore[no-untyped-def]
    """The key given is the one the operation wants: never a 401 or a ``wrong_role``."""
    SEEN[(case.operation.label, response.status_code)] += 1
    body = response.json() if "json" in response.headers.get("content-type", [""])[0] else {}
    code = body.get("code") if isinstance(body, dict) else None
    assert response.status_code != 401 and code != "wrong_role", (
        f"{case.operation.label} refused the {role_of(case.operation.path)} key: {code}")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, answered_as_the_keys_role]
FUZZ = settings(max_examples=15, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def _route_roles(route: APIRoute) -> set[str]:
    """Roles named by ``deps.role(name)`` anywhere in the route's dependency tree;
    ``ANY_KEY`` when it only asks for a key of any role (``deps.principal``)."""
    roles, todo, any_key = set(), list(route.dependant.dependencies), False
    while todo:
        dep = todo.pop()
        call = dep.call
        if call is not None and getattr(call, "__qualname__", "").startswith("role.<locals>"):
            roles.add(inspect.getclosurevars(call).nonlocals["name"])
        any_key = any_key or call is principal
        todo.extend(dep.dependencies)
    return roles or ({ANY_KEY} if any_key else set())


def test_every_operation_has_the_role_its_route_requires():
    every = [*APP.routes, *(r for m in ROUTERS for r in m.router.routes)]
    routes = {(m, r.path): r for r in every if isinstance(r, APIRoute) for m in r.methods}
    assert OPERATIONS
    for op in OPERATIONS:
        required = _route_roles(routes[(op.method.upper(), op.path)]) or {PUBLIC}
        assert required == {role_of(op.path)}, op.label


def _has_inputs(op) -> bool:  # type: ignore[no-untyped-def]
    """A body, a path or a query parameter: something negative data can be made of."""
    raw = op.definition.raw
    return "requestBody" in raw or any(p.get("in") in ("path", "query")
                                       for p in raw.get("parameters", []))


CASES = [pytest.param(op, mode, id=f"{op.label}-{mode.value}") for op in OPERATIONS
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode is GenerationMode.POSITIVE or _has_inputs(op)]


BODY_FIELDS = {"merchant_id", "item_id", "order_ids", "courier_id", "url"}


def _grounded(value: object, draw_index: int) -> object:
    """``value`` with known ids in the fields named like them and points inside the region
    (a generated latitude is almost never in the demo city, so bodies stop at 422)."""
    if isinstance(value, list):
        return [_grounded(v, draw_index + i) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out = {k: _grounded(v, draw_index) for k, v in value.items()}
    if isinstance(out.get("lat"), float | int) and isinstance(out.get("lng"), float | int):
        shift = (draw_index % 7) * 0.002
        out.update(lat=DEMO_CENTER.lat + shift, lng=DEMO_CENTER.lng - shift)
    for name in BODY_FIELDS & out.keys():
        out[name] = KNOWN[name][draw_index % len(KNOWN[name])]
    return out


def cases(operation, mode):  # type: ignore[no-untyped-def]
    """Generated cases; in positive mode, half of them on known ids and in-region points."""
    generated = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.NEGATIVE:
        return generated
    names = {p.name for p in operation.path_parameters}
    known = {n: st.sampled_from(KNOWN[n]) for n in names if n in KNOWN}
    grounded = st.fixed_dictionaries(known).flatmap(
        lambda ids: operation.as_strategy(path_parameters=ids or None))

    def ground(case, i):  # type: ignore[no-untyped-def]
        if isinstance(case.body, dict | list):
            case.body = _grounded(case.body, i)
        return case

    return st.one_of(generated, st.builds(ground, grounded, st.integers(0, 100)))


@pytest.mark.parametrize("operation, mode", CASES)
def test_every_operation_answers_as_documented_and_never_5xx(operation, mode):
    headers = headers_for(operation.path)

    @given(case=cases(operation, mode))
    @FUZZ
    def fuzz(case):  # type: ignore[no-untyped-def]
        case.headers = {**(case.headers or {}), **headers}
        case.call_and_validate(checks=CHECKS)

    fuzz()


class LinkedCalls(SCHEMA.as_state_machine()):  # type: ignore[misc]
    """Sequences that follow the spec's links, each call with its role's key; two bodies in
    three (chosen by their content, so a replay grounds the same ones) are grounded (known
    ids, in-region points) so that creations succeed and the links out of them carry real
    ids."""

    calls = 0

    def before_call(self, case):  # type: ignore[no-untyped-def]
        LinkedCalls.calls += 1
        if isinstance(case.body, dict | list):
            digest = zlib.crc32(json.dumps(case.body, sort_keys=True, default=str).encode())
            if digest % 3:
                case.body = _grounded(case.body, digest)

    def get_call_kwargs(self, case):  # type: ignore[no-untyped-def]
        return {"headers": {**(case.headers or {}), **headers_for(case.operation.path)}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):  # type: ignore[no-untyped-def]
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)


def test_linked_sequences_answer_as_documented():
    """Generate phase only, as schemathesis runs its own state machines: the server keeps
    what earlier sequences did, so hypothesis cannot replay or shrink one. For the same
    reason a sequence may no longer draw as it did (``FlakyStrategyDefinition``); the run
    then ends there, after enough calls. A failed check is never swallowed."""
    LinkedCalls.calls = 0
    try:
        LinkedCalls.run(settings=settings(
            max_examples=40, stateful_step_count=6, deadline=None, database=None,
            phases=[Phase.generate], suppress_health_check=list(HealthCheck)))
    except FlakyStrategyDefinition:
        assert LinkedCalls.calls >= 60, f"the run stopped after {LinkedCalls.calls} calls"


def test_every_link_names_an_operation_and_its_path_parameter():
    spec = APP.openapi()
    links = [(path, method, name, link) for path, item in spec["paths"].items()
             for method, op in item.items() for response in op["responses"].values()
             for name, link in response.get("links", {}).items()]
    assert len(links) >= 10
    for path, method, name, link in links:
        ref = link["operationRef"].removeprefix("#/paths/")
        target_path, target_method = ref.rsplit("/", 1)
        target_path = target_path.replace("~1", "/").replace("~0", "~")
        target = spec["paths"][target_path][target_method]
        params = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
        assert set(link["parameters"]) <= params, f"{method} {path} -> {name}"
