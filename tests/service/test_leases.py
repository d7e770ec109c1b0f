"""Region leases on SQLite and PostgreSQL: one owner at a time, a token that grows with each
new ownership, takeover after expiry, and the fence that refuses a stale owner's round."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from offer_helpers import a_confirmed_order, on_shift

from lastmile.adapters.clock import ManualClock
from lastmile.adapters.dispatch_worker import DispatchWorker
from lastmile.adapters.region_leases import LeaseKeeper
from lastmile.app import dispatching, leases
from lastmile.app.leases import Fence
from lastmile.core.dispatch import DispatchPolicy, PolicyKind
from lastmile.core.errors import Conflict
from lastmile.core.leases import claim, fair_share, renewed
from lastmile.sim.seed import DEMO_REGION_ID

GREEDY = DispatchPolicy(kind=PolicyKind.GREEDY)


def _fence(lease) -> Fence:  # type: ignore[no-untyped-def]
    return Fence(name=lease.name, owner=lease.owner, token=lease.token)


def test_a_live_lease_is_refused_to_others_and_renewed_for_its_owner():
    first = claim(None, name="r", owner="a", now=0.0, ttl_s=10)
    assert first is not None and first.token == 1
    assert claim(first, name="r", owner="b", now=9.9, ttl_s=10) is None
    again = claim(first, name="r", owner="a", now=5.0, ttl_s=10)
    assert again is not None and (again.token, again.expires_at) == (1, 15.0)
    taken = claim(first, name="r", owner="b", now=10.0, ttl_s=10)
    assert taken is not None and (taken.owner, taken.token) == ("b", 2)
    assert renewed(taken, owner="a", token=1, now=11.0, ttl_s=10) is None


def test_fair_shares_split_evenly_and_always_cover_every_region():
    assert [fair_share(5, 3, r) for r in range(3)] == [2, 2, 1]
    assert [fair_share(2, 4, r) for r in range(4)] == [1, 1, 0, 0]
    assert fair_share(5, 0) == 5 and fair_share(0, 3, 2) == 0
    for names in range(12):
        for workers in range(1, 6):
            shares = [fair_share(names, workers, r) for r in range(workers)]
            assert sum(shares) == names and max(shares) - min(shares) <= 1
    with pytest.raises(ValueError, match="rank"):
        fair_share(5, 2, 2)


def test_claims_race_from_threads_and_only_one_worker_owns_the_region(platform):
    p = platform
    clock = ManualClock(start=1000.0)
    winners: list[str] = []
    barrier = threading.Barrier(6)

    def contend(worker: str) -> None:
        barrier.wait()
        got = leases.claim(p.services, "reg_x", worker, 10.0, now=clock.now())
        if got is not None:
            winners.append(got.owner)

    for rnd in range(3):
        threads = [threading.Thread(target=contend, args=(f"w{rnd}-{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(winners) == rnd + 1, winners  # exactly one winner per expiry
        clock.advance(10.0)  # the winner "dies": the lease expires
    with p.services.uow(read_only=True) as uow:
        lease = uow.leases.get("reg_x")
    assert lease is not None and lease.token == 3 and lease.owner == winners[-1]


def test_a_released_lease_is_taken_at_once_with_the_next_token(platform):
    p = platform
    a = leases.claim(p.services, "reg_x", "a", 30.0, now=0.0)
    assert a is not None and leases.claim(p.services, "reg_x", "b", 30.0, now=1.0) is None
    assert leases.release(p.services, _fence(a), now=2.0)
    b = leases.claim(p.services, "reg_x", "b", 30.0, now=2.0)
    assert b is not None and b.token == a.token + 1
    assert leases.renew(p.services, _fence(a), 30.0, now=3.0) is None  # a's ownership ended
    assert not leases.release(p.services, _fence(a), now=3.0)


def _offers_and_events(p) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with p.container.engine.connect() as conn:
        offers = conn.execute(sa.text("select count(*) from offers")).scalar()
        made = conn.execute(sa.text(
            "select count(*) from events where type = 'offer.made'")).scalar()
    return int(offers or 0), int(made or 0)


def test_a_paused_owner_that_lost_its_lease_has_its_round_refused(platform, monkeypatch):
    """Worker A plans a round, pauses past its TTL, B takes the region over; A's writes are
    refused by the fence (lease_lost), counted, and none of its offers exist."""
    p = platform
    clock = ManualClock(start=p.clock.now())
    a_confirmed_order(p, key="k1")
    on_shift(p, 0)
    a = LeaseKeeper(p.services, worker_id="a", ttl_s=5.0, renew_every_s=1.0, clock=clock,
                    regions=lambda: [DEMO_REGION_ID])
    b = LeaseKeeper(p.services, worker_id="b", ttl_s=5.0, renew_every_s=1.0, clock=clock,
                    regions=lambda: [DEMO_REGION_ID])
    assert set(a.tick()) == {DEMO_REGION_ID} and b.tick() == {}
    real_plan = dispatching.plan_round

    def paused(*args, **kwargs):  # type: ignore[no-untyped-def]
        clock.advance(6.0)  # A stalls (GC pause, swapped out) past its TTL mid-round...
        assert set(b.tick()) == {DEMO_REGION_ID}  # ...and B takes the region over
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(dispatching, "plan_round", paused)
    worker_a = DispatchWorker(p.services, p.container.live, policy=GREEDY, leases=a)
    assert worker_a.run_once() == []
    assert worker_a.stats.fenced == 1 and worker_a.stats.errors == 0
    assert a.held() == {} and a.lost == 1
    assert _offers_and_events(p) == (0, 0)  # nothing of A's round was written
    monkeypatch.setattr(dispatching, "plan_round", real_plan)
    worker_b = DispatchWorker(p.services, p.container.live, policy=GREEDY, leases=b)
    [result] = worker_b.run_once()
    assert len(result.offers) == 1 and _offers_and_events(p) == (1, 1)
    tokens = (b.held()[DEMO_REGION_ID].token,)
    assert tokens == (2,)


def test_the_fence_refuses_a_stale_token_inside_the_writing_transaction(platform):
    p = platform
    a = leases.claim(p.services, "reg_x", "a", 5.0, now=0.0)
    assert a is not None
    assert leases.claim(p.services, "reg_x", "b", 5.0, now=6.0) is not None
    with p.services.uow() as uow, pytest.raises(Conflict) as refused:
        leases.check_fence(uow, _fence(a))
    assert refused.value.code == "lease_lost" and "token 1" in refused.value.message


def test_two_keepers_share_the_regions_fairly_and_one_takes_over_the_other(platform):
    p = platform
    clock = ManualClock(start=0.0)
    names = [f"reg_{i}" for i in range(5)]
    a = LeaseKeeper(p.services, worker_id="a", ttl_s=3.0, renew_every_s=1.0, clock=clock,
                    regions=lambda: names)
    b = LeaseKeeper(p.services, worker_id="b", ttl_s=3.0, renew_every_s=1.0, clock=clock,
                    regions=lambda: names)
    assert len(a.tick()) == 5  # alone: all of them
    b.tick()  # b is seen: a gives back its extras on its next tick, b claims them on its next
    clock.advance(1.0)
    a.tick()
    b.tick()
    held_a, held_b = set(a.held()), set(b.held())
    assert not held_a & held_b and held_a | held_b == set(names)
    assert sorted((len(held_a), len(held_b))) == [2, 3]
    # a dies without a word: b owns everything within ttl + one renew interval.
    for _ in range(4):
        clock.advance(1.0)
        b.tick()
    assert set(b.held()) == set(names)
    with p.services.uow(read_only=True) as uow:
        owners = {n: uow.leases.get(n) for n in names}
    assert all(lease is not None and lease.owner == "b" for lease in owners.values())
    assert all(lease.token == 2 for n, lease in owners.items() if n in held_a)  # type: ignore[union-attr]


def test_housekeeping_runs_in_one_process_at_a_time(platform):
    from lastmile.app.housekeeping import run_housekeeping

    p = platform
    live = p.container.live
    assert run_housekeeping(p.services, live, owner="api-1", ttl_s=90.0)
    assert not run_housekeeping(p.services, live, owner="dispatcher-1", ttl_s=90.0)
    assert run_housekeeping(p.services, live, owner="api-1", ttl_s=90.0)  # renews its turn
    p.clock.advance(91.0)  # api-1 died: the next one takes over after the TTL
    assert run_housekeeping(p.services, live, owner="dispatcher-1", ttl_s=90.0)
    assert not run_housekeeping(p.services, live, owner="api-1", ttl_s=90.0)


def test_a_dead_workers_heartbeat_stops_counting_and_is_forgotten_later(platform):
    p = platform
    assert leases.heartbeat(p.services, "a", 10.0, now=0.0) == ["a"]
    assert leases.heartbeat(p.services, "b", 10.0, now=5.0) == ["a", "b"]
    assert leases.heartbeat(p.services, "b", 10.0, now=10.5) == ["b"]  # a is past its TTL
    leases.heartbeat(p.services, "b", 10.0, now=2000.0)
    with p.services.uow(read_only=True) as uow:
        assert uow.leases.live_workers(float("-inf")) == ["b"]  # a's row is deleted


def test_rounds_are_timed_and_regions_held_are_counted_in_the_default_registry(platform):
    from prometheus_client import REGISTRY

    p = platform
    keeper = LeaseKeeper(p.services, worker_id="metrics-w", ttl_s=5.0, renew_every_s=1.0,
                         clock=ManualClock(start=0.0), regions=lambda: [DEMO_REGION_ID])
    keeper.tick()
    assert REGISTRY.get_sample_value("lastmile_dispatch_regions_held",
                                     {"worker": "metrics-w"}) == 1.0
    labels = {"region": DEMO_REGION_ID}
    before = REGISTRY.get_sample_value("lastmile_dispatch_round_seconds_count", labels) or 0.0
    DispatchWorker(p.services, p.container.live, policy=GREEDY, leases=keeper).run_once()
    after = REGISTRY.get_sample_value("lastmile_dispatch_round_seconds_count", labels)
    assert after == before + 1
    keeper.release_all()
    assert REGISTRY.get_sample_value("lastmile_dispatch_regions_held",
                                     {"worker": "metrics-w"}) == 0.0


def test_serve_with_a_dispatcher_runs_fenced_rounds_through_the_lease(sqlite_platform):
    """``lastmile serve --dispatch-every N``: the embedded worker holds every region by lease."""
    p = sqlite_platform
    a_confirmed_order(p, key="k1")
    on_shift(p, 0)
    p.container.dispatch_interval_s = 0.05
    p.container.start()
    dispatcher = p.container.dispatcher
    assert dispatcher is not None and dispatcher.leases is not None
    deadline = threading.Event()
    for _ in range(400):  # up to ~20 s on a loaded machine; returns at the first offer
        if dispatcher.stats.offers:
            break
        deadline.wait(0.05)
    assert dispatcher.stats.offers == 1 and dispatcher.stats.fenced == 0
    assert set(dispatcher.leases.held()) == {DEMO_REGION_ID}
    p.container.close()
    with p.services.uow(read_only=True) as uow:
        lease = uow.leases.get(DEMO_REGION_ID)
    assert lease is not None and lease.owner == p.container.worker_id
    assert lease.expires_at <= time.time()  # released on close


def test_a_fenced_round_that_loses_a_race_writes_nothing_and_is_not_an_error(platform,
                                                                            monkeypatch):
    p = platform
    a_confirmed_order(p, key="k1")
    on_shift(p, 0)
    keeper = LeaseKeeper(p.services, worker_id="a", ttl_s=5.0, renew_every_s=1.0,
                         clock=ManualClock(start=0.0), regions=lambda: [DEMO_REGION_ID])
    keeper.tick()
    real_offer_in = dispatching.offer_in

    class UniqueViolation(Exception):  # what the driver raises: PostgreSQL's code, SQLite's text
        sqlstate = "23505"

    def then_lose(*args, **kwargs):  # type: ignore[no-untyped-def]
        real_offer_in(*args, **kwargs)  # written in the round's unit of work, then the
        # courier's unique pending-offer index fires (an ops offer committed first)
        raise sa.exc.IntegrityError("INSERT INTO offers ...", {}, UniqueViolation(
            "UNIQUE constraint failed: offers.courier_id"))

    monkeypatch.setattr(dispatching, "offer_in", then_lose)
    worker = DispatchWorker(p.services, p.container.live, policy=GREEDY, leases=keeper)
    assert worker.run_once() == []
    assert worker.stats.refused["concurrent_update"] == 1
    assert (worker.stats.errors, worker.stats.fenced) == (0, 0)
    assert _offers_and_events(p) == (0, 0)  # the whole round was undone
    assert set(keeper.held()) == {DEMO_REGION_ID}  # still the owner
    monkeypatch.setattr(dispatching, "offer_in", real_offer_in)
    [result] = worker.run_once()
    assert len(result.offers) == 1 and _offers_and_events(p) == (1, 1)
