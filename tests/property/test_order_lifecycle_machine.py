"""No sequence of commands, by any actor, reaches an inconsistent order."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fakes import an_order
from lastmile.core.errors import DomainError
from lastmile.core.lifecycle import (
    ArriveAtDropoff,
    ArriveAtPickup,
    Assign,
    Cancel,
    Confirm,
    Deliver,
    MarkReady,
    PickUp,
    Reassign,
    Unassign,
    decide,
)
from lastmile.core.orders import TERMINAL, Actor, ActorKind, DeliveryProof, OrderStatus

S = OrderStatus
WITH_COURIER = {S.ASSIGNED, S.AT_PICKUP, S.PICKED_UP, S.AT_DROPOFF, S.DELIVERED}
AFTER_PICKUP = {S.PICKED_UP, S.AT_DROPOFF, S.DELIVERED}

actors = st.sampled_from([
    Actor(kind=ActorKind.CONSUMER, id="con_1"), Actor(kind=ActorKind.CONSUMER, id="con_2"),
    Actor(kind=ActorKind.MERCHANT, id="mer_1"), Actor(kind=ActorKind.MERCHANT, id="mer_2"),
    Actor(kind=ActorKind.COURIER, id="cou_1"), Actor(kind=ActorKind.COURIER, id="cou_2"),
    Actor(kind=ActorKind.OPS, id="ops"), Actor(kind=ActorKind.SYSTEM, id="system"),
])
commands = st.one_of(
    st.builds(Confirm, prep_estimate_s=st.integers(60, 3600)),
    st.just(MarkReady()),
    st.builds(Assign, courier_id=st.sampled_from(["cou_1", "cou_2"])),
    st.just(ArriveAtPickup()), st.just(PickUp()), st.just(ArriveAtDropoff()),
    st.just(Deliver(proof=DeliveryProof(note="at door"))),
    st.just(Unassign(reason="dropped")),
    st.builds(Reassign, courier_id=st.sampled_from(["cou_1", "cou_2"])),
    st.just(Cancel(reason="because")),
)


class OrderMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.order = an_order()
        self.now = 1000.0
        self.accepted = 0
        self.moves = 0

    @rule(command=commands, actor=actors, dt=st.floats(0, 600))
    def act(self, command, actor, dt):
        self.now += dt
        before = self.order
        try:
            nxt, transition = decide(before, command, actor=actor, now=self.now)
        except DomainError:
            assert self.order is before
            return
        assert before.status not in TERMINAL, "a terminal order changed"
        assert transition.from_status is before.status and transition.to_status is nxt.status
        assert transition.version == nxt.version == before.version + 1
        if isinstance(command, Reassign):
            assert before.status is S.ASSIGNED and nxt.status is S.ASSIGNED
            assert nxt.courier_id == command.courier_id != before.courier_id
            self.moves += 1
        self.order = nxt
        self.accepted += 1

    @invariant()
    def moves_count_reassignments(self):
        assert self.order.moves == self.moves

    @invariant()
    def version_counts_transitions(self):
        assert self.order.version == 1 + self.accepted

    @invariant()
    def courier_present_exactly_when_held(self):
        o = self.order
        if o.status in WITH_COURIER:
            assert o.courier_id is not None
        elif o.status is not S.CANCELLED:
            assert o.courier_id is None

    @invariant()
    def timestamps_match_status(self):
        o = self.order
        assert (o.delivered_at is not None) == (o.status is S.DELIVERED)
        if o.status in AFTER_PICKUP:
            assert o.picked_up_at is not None and o.ready_at is not None
            assert o.ready_at <= o.picked_up_at
        if o.status not in (S.PLACED, S.CANCELLED):
            assert o.confirmed_at is not None
        if o.status is S.READY:
            assert o.ready_at is not None

    @invariant()
    def cancellation_exactly_when_cancelled(self):
        o = self.order
        assert (o.cancellation is not None) == (o.status is S.CANCELLED)
        if o.cancellation is not None:
            charge = o.cancellation.consumer_charge.amount_minor
            assert 0 <= charge <= o.prices.total.amount_minor


OrderMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=30,
                                          deadline=None)
TestOrderLifecycle = OrderMachine.TestCase
