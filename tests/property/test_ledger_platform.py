"""Random order histories run through the real use cases (on a fake unit of work), their
events handed to the ledger subscriber redelivered and out of order, with refunds and
credits on top: the ledger always passes ``ledger check`` and agrees with every order."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import FakeUnitOfWorkFactory
from lastmile.adapters.bus.outbox import IdempotentHandler
from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.app import fulfilment, ledger, offers, queries
from lastmile.app.context import Services
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.geo import Point
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof
from lastmile.sim.seed import SeedSummary, seed_demo

DROP = Point(lat=37.445, lng=-122.15)
STEPS = ("confirm", "assign", "ready", "arrive", "pick_up", "at_dropoff", "deliver")

plans = st.lists(st.fixed_dictionaries({
    "tip": st.sampled_from([0, 1, 250]),
    "qty": st.integers(1, 3),
    "steps": st.integers(0, len(STEPS)),
    "canceller": st.sampled_from([None, "consumer", "merchant", "ops", "system"]),
    "reversed": st.booleans(),  # its events reach the ledger last-first
    "duplicates": st.booleans(),  # ... and each twice
    "give_back": st.lists(st.tuples(st.booleans(), st.integers(1, 5000)), max_size=2),
}), min_size=1, max_size=3)


@dataclass
class World:
    services: Services
    clock: ManualClock
    seed: SeedSummary


def fake_world() -> World:
    """The ``platform`` fixture's seed on a fake unit of work, fresh for each example."""
    clock = ManualClock()
    services = Services(uow=FakeUnitOfWorkFactory(), clock=clock, ids=SequentialIds(),
                        rng=random.Random(3))
    seed = seed_demo(services, seed=5, merchants=6, consumers=4, couriers=3)
    return World(services=services, clock=clock, seed=seed)


def _run(p, i, plan):  # type: ignore[no-untyped-def]
    svc = p.services
    m = queries.get_merchant(svc, p.seed.merchant_ids[i])
    order = place_order(svc, OrderRequest(
        consumer_id=p.seed.consumer_ids[i], merchant_id=m.id,
        lines=(LineRequest(item_id=m.menu[0].id, quantity=plan["qty"]),), dropoff=DROP,
        tip_minor=plan["tip"]), idempotency_key=f"k{i}").order
    merchant = Actor(kind=ActorKind.MERCHANT, id=m.id)
    courier = Actor(kind=ActorKind.COURIER, id=p.seed.courier_ids[i])
    for step in STEPS[:plan["steps"]]:
        if step == "confirm":
            fulfilment.confirm_order(svc, order.id, prep_estimate_s=600, actor=merchant)
        elif step == "assign":
            fulfilment.start_shift(svc, courier.id, device_id=f"d{i}",
                                   ends_at=p.clock.now() + 7200, actor=courier)
            offer = offers.make_offer(svc, courier_id=courier.id, order_ids=(order.id,),
                                      actor=SYSTEM)
            offers.accept_offer(svc, offer.id, actor=courier)
        elif step == "ready":
            fulfilment.mark_ready(svc, order.id, actor=merchant)
        elif step in ("arrive", "at_dropoff"):
            fulfilment.courier_arrive(svc, order.id, actor=courier)
        elif step == "pick_up":
            fulfilment.pick_up(svc, order.id, actor=courier)
        else:
            fulfilment.deliver(svc, order.id, proof=DeliveryProof(note="door"), actor=courier)
    who = plan["canceller"]
    if who is not None and plan["steps"] < len(STEPS):
        ids = {"consumer": order.consumer_id, "merchant": m.id}
        try:
            fulfilment.cancel_order(svc, order.id, reason="changed", actor=Actor(
                kind=ActorKind(who), id=ids.get(who, who)))
        except Conflict:  # the food left the store: only ops may cancel now
            fulfilment.cancel_order(svc, order.id, reason="support",
                                    actor=Actor(kind=ActorKind.OPS, id="ops"))
    return order.id


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans)
def test_random_histories_through_the_use_cases_keep_the_ledger_checked(plan):  # type: ignore[no-untyped-def]
    p = fake_world()
    svc = p.services
    order_ids = [_run(p, i, one) for i, one in enumerate(plan)]
    with svc.uow(read_only=True) as uow:
        events = [e.event for e in uow.outbox.pending(100_000)]
    handler = IdempotentHandler(svc, ledger.SUBSCRIBER,
                                lambda e, uow: ledger.on_event(e, uow, svc))
    for order_id, one in zip(order_ids, plan, strict=True):
        mine = [e for e in events if e.subject_id == order_id]
        for event in (mine[::-1] if one["reversed"] else mine) * (2 if one["duplicates"] else 1):
            handler(event)
    for order_id, one in zip(order_ids, plan, strict=True):
        for n, (as_credit, amount) in enumerate(one["give_back"]):
            try:
                ledger.give_back(svc, order_id, amount, key=f"{order_id}:gb{n}",
                                 as_credit=as_credit)
            except InvalidInput as exc:  # more than is left to give back: refused, not posted
                assert exc.code == "invalid_amount"
    report = ledger.check(svc)
    assert report.ok, report.problems
    assert report.orders_checked == len(order_ids) and report.unposted_orders == ()
