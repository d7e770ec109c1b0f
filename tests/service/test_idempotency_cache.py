"""The idempotency cache (app.idempotency): one contract for memory and Redis (marked),
``once`` on its own, and order placement racing across two containers that share
PostgreSQL and Redis, as two API processes do."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from databases import drop_schema, pg_schema_url, postgres_available, redis_prefix
from lastmile.adapters.clock import SystemClock, UuidIds
from lastmile.adapters.idempotency.memory import MemoryIdempotencyCache
from lastmile.adapters.idempotency.redis_cache import RedisIdempotencyCache
from lastmile.app import queries
from lastmile.app.auth import Principal
from lastmile.app.idempotency import (
    CachedAnswer,
    CacheUnavailable,
    IdempotencyCache,
    once,
    tenant_scope,
)
from lastmile.app.ordering import LineRequest, OrderRequest, place_order, request_hash
from lastmile.app.tenancy import acting_as
from lastmile.bootstrap import Container, build
from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.geo import Point
from lastmile.settings import Settings
from lastmile.sim.seed import seed_demo

ANSWER = CachedAnswer(request_hash="h1", resource_id="ord_1")


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def cache(request: pytest.FixtureRequest) -> Iterator[IdempotencyCache]:
    if request.param == "memory":
        yield MemoryIdempotencyCache()
        return
    with redis_prefix("idem") as (client, prefix):
        yield RedisIdempotencyCache(client, prefix=prefix)


def test_one_claim_holds_the_marker_until_released(cache):
    token = cache.claim("order:c1", "k", ttl_s=30)
    assert token is not None
    assert cache.claim("order:c1", "k", ttl_s=30) is None
    assert cache.claim("order:c2", "k", ttl_s=30) is not None  # another scope, another key
    cache.release("order:c1", "k", "not-the-token")
    assert cache.claim("order:c1", "k", ttl_s=30) is None
    cache.release("order:c1", "k", token)
    assert cache.claim("order:c1", "k", ttl_s=30) is not None


def test_a_completed_answer_is_replayed_and_blocks_new_claims(cache):
    token = cache.claim("s", "k", ttl_s=30)
    assert token is not None
    cache.complete("s", "k", ANSWER, ttl_s=60)
    assert cache.wait("s", "k", timeout_s=0.1) == ANSWER
    assert cache.claim("s", "k", ttl_s=30) is None
    cache.release("s", "k", token)  # too late: the answer stays
    assert cache.wait("s", "k", timeout_s=0.1) == ANSWER


def test_a_waiter_gets_the_answer_completed_meanwhile(cache):
    assert cache.claim("s", "k", ttl_s=30) is not None
    later = threading.Timer(0.2, lambda: cache.complete("s", "k", ANSWER, ttl_s=60))
    later.start()
    try:
        assert cache.wait("s", "k", timeout_s=5) == ANSWER
    finally:
        later.cancel()


def test_waiting_ends_without_an_answer_when_the_holder_fails_or_time_is_up(cache):
    assert cache.wait("s", "nobody", timeout_s=0.1) is None
    token = cache.claim("s", "k", ttl_s=30)
    assert token is not None
    assert cache.wait("s", "k", timeout_s=0.1) is None  # still in flight: timed out
    later = threading.Timer(0.2, lambda: cache.release("s", "k", token))
    later.start()
    try:
        assert cache.wait("s", "k", timeout_s=5) is None
    finally:
        later.cancel()
    assert cache.claim("s", "k", ttl_s=30) is not None


def test_an_in_flight_marker_expires(cache):
    assert cache.claim("s", "k", ttl_s=0.2) is not None
    assert cache.wait("s", "k", timeout_s=3) is None  # gone by expiry, not by answer
    assert cache.claim("s", "k", ttl_s=30) is not None


def test_the_memory_cache_drops_the_oldest_entries_past_its_bound():
    cache = MemoryIdempotencyCache(max_entries=3)
    for key in "abcd":
        cache.complete("s", key, ANSWER, ttl_s=60)
        assert cache.claim("s", key, ttl_s=30) is None
    assert cache.claim("s", "e", ttl_s=30) is not None  # room made: "a" went
    assert cache.claim("s", "a", ttl_s=30) is not None


def _racing(n: int, call: Callable[[int], object]) -> tuple[list[object], list[Exception]]:
    barrier = threading.Barrier(n)
    results: list[object] = []
    errors: list[Exception] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results.append(call(i))
        except Exception as exc:  # surfaced by the caller's asserts
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def test_concurrent_duplicates_wait_for_the_first_and_replay_its_answer(cache):
    created: list[str] = []

    def create() -> str:
        created.append("x")
        threading.Event().wait(0.2)  # long enough for every duplicate to find the marker
        return "res_1"

    results, errors = _racing(6, lambda _: once(
        cache, scope="s", key="k", request_hash="h", create=create, resource_of=str,
        replay=lambda rid: f"replayed {rid}"))
    assert errors == [] and created == ["x"]
    assert sorted(map(str, results)) == ["replayed res_1"] * 5 + ["res_1"]


def test_a_failed_first_request_lets_its_duplicate_run_itself(cache):
    calls: list[int] = []

    def create() -> str:
        calls.append(1)
        if len(calls) == 1:
            threading.Event().wait(0.2)
            raise InvalidInput("bad", "the first attempt fails")
        return "res_2"

    results, errors = _racing(2, lambda _: once(
        cache, scope="s", key="k", request_hash="h", create=create, resource_of=str,
        replay=lambda rid: f"replayed {rid}"))
    assert [type(e) for e in errors] == [InvalidInput]
    assert results == ["res_2"] and len(calls) == 2


def test_an_answer_for_another_request_or_a_gone_resource_goes_to_the_database(cache):
    cache.complete(tenant_scope("s"), "k", ANSWER, ttl_s=60)
    other = once(cache, scope="s", key="k", request_hash="not-h1", create=lambda: "db",
                 resource_of=str, replay=lambda rid: pytest.fail("replayed another request"))
    gone = once(cache, scope="s", key="k", request_hash="h1", create=lambda: "db",
                resource_of=str, replay=lambda rid: None)
    assert (other, gone) == ("db", "db")


def test_two_tenants_with_the_same_scope_and_key_never_share_an_answer_or_a_marker(cache):
    """Issue 9: cache entries are per tenant, even where the scope string is the same."""
    with acting_as("acme:live"):
        first = once(cache, scope="s", key="k", request_hash="h", create=lambda: "res_acme",
                     resource_of=str, replay=lambda rid: rid)
        held = cache.claim(tenant_scope("s2"), "k", ttl_s=30)  # acme's request in flight
        assert held is not None
    with acting_as("bravo:live"):
        second = once(cache, scope="s", key="k", request_hash="h", create=lambda: "res_bravo",
                      resource_of=str, replay=lambda rid: pytest.fail(f"replayed {rid}"))
        assert cache.claim(tenant_scope("s2"), "k", ttl_s=30) is not None  # not acme's
    with acting_as("acme:live"):
        again = once(cache, scope="s", key="k", request_hash="h", create=lambda: "db",
                     resource_of=str, replay=lambda rid: rid)
    assert (first, second, again) == ("res_acme", "res_bravo", "res_acme")


def test_an_unreachable_cache_leaves_the_database_to_decide():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    cache = RedisIdempotencyCache.from_url(f"redis://127.0.0.1:{port}/0",
                                           prefix="test:idem:down:")
    with pytest.raises(CacheUnavailable):
        cache.claim("s", "k", ttl_s=30)
    assert once(cache, scope="s", key="k", request_hash="h", create=lambda: "db",
                resource_of=str, replay=lambda rid: pytest.fail("nothing cached")) == "db"


class LosesAnswers(MemoryIdempotencyCache):
    """A cache whose server goes away between the claim and the answer."""

    def complete(self, scope: str, key: str, answer: CachedAnswer, *, ttl_s: float) -> None:
        raise CacheUnavailable("gone")


def test_a_cache_failing_after_the_commit_does_not_turn_the_answer_into_an_error():
    created: list[str] = []
    cache = LosesAnswers()

    def create() -> str:
        created.append("x")
        return "res"

    assert once(cache, scope="s", key="k", request_hash="h", create=create, resource_of=str,
                replay=lambda rid: pytest.fail("no answer was cached")) == "res"
    assert created == ["x"]


def test_without_a_cache_the_database_path_runs_alone():
    assert once(None, scope="s", key="k", request_hash="h", create=lambda: "db",
                resource_of=str, replay=lambda rid: pytest.fail("no cache, no replay")) == "db"


# Two containers on one PostgreSQL schema and one Redis prefix: two API processes.


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[Container, Container]]:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with redis_prefix("idem2") as (_, prefix):
        yield from _containers(tmp_path, prefix)


def _containers(tmp_path: Path, prefix: str) -> Iterator[tuple[Container, Container]]:
    url, schema = pg_schema_url()
    settings = Settings(data_dir=tmp_path, database_url=url, redis_url="redis://127.0.0.1:6379/0",
                        redis_prefix=prefix)
    a = build(settings, clock=SystemClock(), ids=UuidIds(), rng=random.Random(1))
    b = build(settings, clock=SystemClock(), ids=UuidIds(), rng=random.Random(2),
              run_migrations=False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()
        drop_schema(schema)


@pytest.mark.postgres
@pytest.mark.redis
def test_one_key_placed_at_once_through_two_processes_makes_one_order(two_processes):
    a, b = two_processes
    seed = seed_demo(a.services, seed=5, merchants=2, consumers=2, couriers=1)
    menu = queries.get_merchant(a.services, seed.merchant_ids[0]).menu
    req = OrderRequest(consumer_id=seed.consumer_ids[0], merchant_id=seed.merchant_ids[0],
                       lines=(LineRequest(item_id=menu[0].id, quantity=1),),
                       dropoff=Point(lat=37.445, lng=-122.15))
    results, errors = _racing(8, lambda i: place_order((a, b)[i % 2].services, req,
                                                       idempotency_key="twice"))
    assert errors == []
    placed = [r for r in results if not r.replayed]  # type: ignore[attr-defined]
    assert len(placed) == 1
    assert {r.order.id for r in results} == {placed[0].order.id}  # type: ignore[attr-defined]
    ops = Principal(role="ops", subject_id="ops")
    assert [o.id for o in queries.list_orders(b.services, who=ops, statuses=None)] == [
        placed[0].order.id]
    cached = b.services.idempotency_cache
    assert cached is not None
    assert cached.wait(tenant_scope(f"order:{req.consumer_id}"), "twice", timeout_s=1) == (
        CachedAnswer(
            request_hash=request_hash(req), resource_id=placed[0].order.id))
    # the same key with another body: still refused, by the database, through either process
    other = OrderRequest(consumer_id=req.consumer_id, merchant_id=req.merchant_id,
                         lines=(LineRequest(item_id=menu[0].id, quantity=2),),
                         dropoff=req.dropoff)
    with pytest.raises(Conflict) as err:
        place_order(a.services, other, idempotency_key="twice")
    assert err.value.code == "idempotency_key_reused"
