"""A simulated courier follows a stacked offer's route (each pickup merchant in turn, then
each door in the route's order), declines extensions while holding a stack, and re-plans
when an order it holds is withdrawn (moved to another courier): on the fake platform."""

from __future__ import annotations

import random

import simpy

from lastmile.core.geo import Point
from lastmile.core.model import Vehicle
from lastmile.core.offers import OfferStop
from lastmile.sim.actions import OfferView
from lastmile.sim.city import SimCourierSpec, SimMerchant
from lastmile.sim.couriers import Crew, Offered, Withdrawn, courier
from lastmile.sim.model import CourierRun, OrderRecord, Phase, WorldConfig, WorldLog

from .fake_platform import FakePlatform

HOME = Point(lat=37.440, lng=-122.140)
SHOP1 = Point(lat=37.450, lng=-122.140)  # 1.1 km north of home
SHOP2 = Point(lat=37.452, lng=-122.140)  # 220 m further
DOOR1 = Point(lat=37.470, lng=-122.140)
DOOR2 = Point(lat=37.468, lng=-122.142)


class _Rig:
    """Couriers on one environment and a fake platform; every offer accepted after 10 s.
    ``told`` records the withdrawals the crew passed on (the world's ``withdraw``)."""

    def __init__(self, *couriers: str):
        self.env = simpy.Environment(initial_time=0)
        self.log = WorldLog(start=0, end=20_000)
        self.platform = FakePlatform(lambda: self.env.now)
        self.told: list[tuple[str, Withdrawn]] = []
        shops = {"m1": SHOP1, "m2": SHOP2}
        self.crew = Crew(env=self.env, actions=self.platform, rng=random.Random(1),
                         cfg=WorldConfig(travel_noise=0.0), decide=lambda _s: (True, 10.0),
                         log=self.log, now=lambda: self.env.now, withdraw=self._withdraw,
                         merchants={m: SimMerchant(id=m, region_id="r", location=p,
                                                   prep_time_s=600, item_ids=("i1",))
                                    for m, p in shops.items()})
        self.runs: dict[str, CourierRun] = {}
        self.procs: dict[str, simpy.Process] = {}
        for cid in couriers:
            spec = SimCourierSpec(id=cid, region_id="r", vehicle=Vehicle.BICYCLE,
                                  speed_mps=4.5, home=HOME, shift_start=0, shift_end=10_000)
            self.runs[cid] = run = CourierRun(spec=spec, pos=HOME)
            self.log.enrol(run)
            self.procs[cid] = self.env.process(courier(self.crew, run))

    def _withdraw(self, courier_id: str, cause: Withdrawn) -> None:
        self.told.append((courier_id, cause))
        self.procs[courier_id].interrupt(cause)

    def order(self, oid: str, merchant: str, door: Point, ready_at: float = 300.0
              ) -> OrderRecord:
        rec = OrderRecord(id=oid, region_id="r", merchant_id=merchant, consumer_id="k",
                          dropoff=door, placed_at=0, eta_expected_at=1_800, eta_high_at=2_400,
                          fees_minor=600, pickup=SHOP1 if merchant == "m1" else SHOP2,
                          ready_at=ready_at)
        self.log.placed(rec)
        return rec

    def offer(self, cid: str, offer: OfferView) -> None:
        self.platform.offers[cid] = offer
        self.procs[cid].interrupt(Offered(offer))

    def actions(self, cid: str) -> list[tuple[str, ...]]:
        return [c[1:] for c in self.platform.calls
                if c[1] not in ("ping",) and len(c) > 2 and c[2] == cid]


STACK = (OfferStop(kind="pickup", merchant_id="m1", order_ids=("a",)),
         OfferStop(kind="pickup", merchant_id="m2", order_ids=("b",)),
         OfferStop(kind="dropoff", merchant_id="m2", order_ids=("b",)),
         OfferStop(kind="dropoff", merchant_id="m1", order_ids=("a",)))


def test_a_stacked_offer_is_ridden_stop_by_stop_and_an_extension_is_declined():
    rig = _Rig("c1")
    a = rig.order("a", "m1", DOOR1)
    b = rig.order("b", "m2", DOOR2, ready_at=900.0)  # the courier waits at m2
    rig.env.run(until=1)
    rig.offer("c1", OfferView(id="of-ab", order_ids=("a", "b"), stops=STACK))
    rig.env.run(until=500)  # at m1 (arrived ~330 s), food ready at 300: picked up by ~450
    assert a.picked_up_at is not None and b.picked_up_at is None
    rig.order("x", "m2", DOOR2)
    rig.platform.offers["c1"] = OfferView(id="of-x", order_ids=("x",))  # same merchant
    rig.env.run(until=6_000)
    assert rig.actions("c1") == [
        ("start_shift", "c1"), ("accept", "c1", "of-ab"),
        ("arrive", "c1", "a"), ("pick_up", "c1", "a"),
        ("arrive", "c1", "b"), ("decline", "c1", "of-x"), ("pick_up", "c1", "b"),
        ("arrive", "c1", "b"), ("deliver", "c1", "b"),  # the route's door order: b first
        ("arrive", "c1", "a"), ("deliver", "c1", "a")]
    assert b.picked_up_at is not None and b.picked_up_at >= 900 + 120  # waited for the food
    assert a.delivered_at is not None and b.delivered_at is not None
    assert b.delivered_at < a.delivered_at
    assert rig.runs["c1"].phase is Phase.IDLE and rig.runs["c1"].pos == DOOR1


def test_a_withdrawn_order_on_the_way_sends_the_courier_on_to_the_rest_of_its_route():
    """A holds a stack, has picked up at m1 and rides to m2; b is moved to B: A stops going
    to m2 and takes a straight to its door; B fetches b."""
    rig = _Rig("A", "B")
    a = rig.order("a", "m1", DOOR1)
    b = rig.order("b", "m2", DOOR2, ready_at=2_000.0)
    rig.env.run(until=1)
    rig.offer("A", OfferView(id="of-ab", order_ids=("a", "b"), stops=STACK))
    rig.env.run(until=460)
    assert a.picked_up_at is not None and rig.runs["A"].phase is Phase.TO_PICKUP
    rig.offer("B", OfferView(id="of-mv", order_ids=("b",), from_courier_id="A"))
    rig.env.run(until=472)  # B accepts at 470: A is told
    assert rig.told == [("A", Withdrawn(("b",)))]
    assert rig.runs["A"].orders == ["a"] and rig.runs["A"].withdrawn == 1
    assert rig.runs["B"].moved_in == 1 and b.courier_id == "B"
    rig.env.run(until=8_000)
    assert rig.actions("A") == [
        ("start_shift", "A"), ("accept", "A", "of-ab"), ("arrive", "A", "a"),
        ("pick_up", "A", "a"), ("arrive", "A", "a"), ("deliver", "A", "a")]
    assert rig.actions("B")[-4:] == [("arrive", "B", "b"), ("pick_up", "B", "b"),
                                     ("arrive", "B", "b"), ("deliver", "B", "b")]
    assert a.delivered_at is not None and b.delivered_at is not None
    # A turned for the door from the road to m2: it did not wait at m2 for b's food
    assert a.delivered_at < 2_000 < b.delivered_at


def test_a_courier_whose_only_order_is_withdrawn_stops_where_it_is_and_goes_idle():
    rig = _Rig("A", "B")
    rig.order("a", "m1", DOOR1, ready_at=1_500.0)
    rig.env.run(until=1)
    rig.offer("A", OfferView(id="of-a", order_ids=("a",)))
    rig.env.run(until=150)
    assert rig.runs["A"].phase is Phase.TO_PICKUP
    rig.offer("B", OfferView(id="of-mv", order_ids=("a",), from_courier_id="A"))
    rig.env.run(until=161)
    run = rig.runs["A"]
    assert run.phase is Phase.IDLE and run.orders == []
    assert HOME.lat < run.pos.lat < SHOP1.lat  # stopped on the road
    assert run.busy_s == 160 - 11
    rig.env.run(until=8_000)
    assert [c for c in rig.actions("A") if c[0] in ("arrive", "pick_up", "deliver")] == []
    assert rig.log.refusals == {}  # told, not refused at the counter


def test_an_offer_seen_on_the_way_to_a_door_is_answered_and_ridden_after_the_last_door():
    """``offers_on_the_go``: a courier told of an offer while riding to a door answers it
    after its answer time without stopping, and rides to the new merchant after the door."""
    rig = _Rig("c1")
    a = rig.order("a", "m1", DOOR1)
    rig.env.run(until=1)
    rig.offer("c1", OfferView(id="of-a", order_ids=("a",)))
    rig.env.run(until=600)
    assert rig.runs["c1"].phase is Phase.TO_DROPOFF
    b = rig.order("b", "m2", DOOR2)
    rig.offer("c1", OfferView(id="of-b", order_ids=("b",)))
    rig.env.run(until=605)
    assert rig.runs["c1"].phase is Phase.TO_DROPOFF  # still riding while it decides
    rig.env.run(until=611)
    assert rig.actions("c1")[-1] == ("accept", "c1", "of-b")
    assert rig.runs["c1"].orders == ["a", "b"]
    rig.env.run(until=8_000)
    assert rig.actions("c1")[2:] == [
        ("arrive", "c1", "a"), ("pick_up", "c1", "a"), ("accept", "c1", "of-b"),
        ("arrive", "c1", "a"), ("deliver", "c1", "a"),
        ("arrive", "c1", "b"), ("pick_up", "c1", "b"), ("arrive", "c1", "b"),
        ("deliver", "c1", "b")]
    assert a.delivered_at is not None and b.picked_up_at is not None
    assert a.delivered_at < b.picked_up_at < b.delivered_at
    assert rig.runs["c1"].phase is Phase.IDLE


def test_a_courier_at_its_last_door_waits_for_its_own_answer_before_going_idle():
    rig = _Rig("c1")
    rig.order("a", "m1", DOOR1)
    rig.env.run(until=1)
    rig.offer("c1", OfferView(id="of-a", order_ids=("a",)))
    rig.env.run(until=1_210)
    assert rig.runs["c1"].phase is Phase.AT_DROPOFF  # handing over (~1,095 to ~1,215)
    b = rig.order("b", "m2", DOOR2)
    rig.offer("c1", OfferView(id="of-b", order_ids=("b",)))  # answer at 1,220: after the drop
    rig.env.run(until=1_218)
    assert rig.log.delivered == 1 and rig.log.idle == set()  # waiting for its own answer
    rig.env.run(until=8_000)
    assert b.delivered_at is not None and b.courier_id == "c1"
    assert rig.log.idle == {"c1"}
