"""Invariants of a dispatch round over random rush-hour snapshots (hypothesis), and a
check that those snapshots make the engine decide: an invariant over empty plans
would hold vacuously."""

from collections import Counter

from hypothesis import event, given, settings
from hypothesis import strategies as st
from strategies import MIN, snapshots, snapshots_with_waiting_couriers

from lastmile.core.dispatch import DispatchPlan, DispatchPolicy, PolicyKind, plan_round


def _label(plan: DispatchPlan) -> None:
    """Shown by ``pytest --hypothesis-show-statistics``: what the drawn plans held."""
    event(f"assignments: {min(len(plan.assignments), 3)}")
    event(f"largest bundle: {max((len(a.order_ids) for a in plan.assignments), default=0)}")
    event(f"prepositions: {bool(plan.prepositions)}")


GREEDY = DispatchPolicy(kind=PolicyKind.GREEDY)
policies = st.sampled_from(
    [
        DispatchPolicy(),
        GREEDY,
        DispatchPolicy(commit_slack_s=60 * MIN, max_bundle_size=3),
    ]
)


@settings(max_examples=150, deadline=None)
@given(snapshots(), policies)
def test_no_courier_gets_two_bundles_at_once(snap, policy):
    plan = plan_round(snap, policy)
    _label(plan)
    ids = [a.courier_id for a in plan.assignments] + [p.courier_id for p in plan.prepositions]
    assert len(ids) == len(set(ids))


@settings(max_examples=150, deadline=None)
@given(snapshots(), policies)
def test_no_order_goes_to_two_couriers(snap, policy):
    plan = plan_round(snap, policy)
    ids = [o for a in plan.assignments for o in a.order_ids]
    assert len(ids) == len(set(ids))
    assert set(ids) <= {o.order_id for o in snap.orders}


@settings(max_examples=150, deadline=None)
@given(snapshots(), policies)
def test_no_pickup_before_ready_or_after_shift_end_and_couriers_idle(snap, policy):
    plan = plan_round(snap, policy)
    orders = {o.order_id: o for o in snap.orders}
    couriers = {c.courier_id: c for c in snap.couriers}
    for a in plan.assignments:
        c = couriers[a.courier_id]
        assert a.pickup_s >= max(orders[i].ready_s for i in a.order_ids)
        assert a.pickup_s <= c.shift_end_s
        assert c.free_s <= snap.now_s and c.shift_start_s <= snap.now_s


@settings(max_examples=150, deadline=None)
@given(snapshots(), policies)
def test_bundles_hold_orders_of_one_merchant(snap, policy):
    orders = {o.order_id: o for o in snap.orders}
    for a in plan_round(snap, policy).assignments:
        assert {orders[i].merchant_id for i in a.order_ids} == {a.merchant_id}


@settings(max_examples=150, deadline=None)
@given(snapshots_with_waiting_couriers())
def test_assignment_updates_only_grow_a_waiting_bundle_with_open_orders_of_its_merchant(snap):
    plan = plan_round(snap, DispatchPolicy())
    event(f"reassignments: {min(len(plan.reassignments), 2)}")
    open_orders = {o.order_id: o for o in snap.orders}
    held = {a.courier_id: a for a in snap.committed}
    ends = {c.courier_id: c.shift_end_s for c in snap.couriers}
    assigned = {o for a in plan.assignments for o in a.order_ids}
    instructed = {a.courier_id for a in plan.assignments} | {
        p.courier_id for p in plan.prepositions
    }
    for u in plan.reassignments:
        before = held[u.courier_id]
        added = set(u.order_ids) - set(before.order_ids)
        assert set(before.order_ids) <= set(u.order_ids) and added
        assert len(u.order_ids) == len(set(u.order_ids)) <= DispatchPolicy().max_bundle_size
        assert added <= open_orders.keys() and not added & assigned
        assert {open_orders[i].merchant_id for i in added} == {before.merchant_id}
        readies = [open_orders[i].ready_s for i in added] + [o.ready_s for o in before.orders]
        assert before.pickup_s <= u.pickup_s == max(before.pickup_s, *readies)
        assert u.pickup_s <= ends[u.courier_id]
        assert u.courier_id not in instructed
    updated = [i for u in plan.reassignments for i in u.order_ids]
    assert len(updated) == len(set(updated))


def _shares(strategy, measure, n=200):  # type: ignore[no-untyped-def]
    """Share of ``n`` drawn snapshots for which each key of ``measure(snap)`` is true.
    ``derandomize``: the same draws every run, so the shares never flake."""
    seen: Counter[str] = Counter()

    @settings(max_examples=n, derandomize=True, deadline=None, database=None)
    @given(strategy)
    def draw(snap):  # type: ignore[no-untyped-def]
        seen["n"] += 1
        seen.update(k for k, v in measure(snap).items() if v)

    draw()
    return {k: seen[k] / seen["n"] for k in seen if k != "n"}


def test_drawn_snapshots_mostly_yield_assignments_bundles_and_prepositions():
    def measure(snap):  # type: ignore[no-untyped-def]
        plan = plan_round(snap, DispatchPolicy())
        return {"assigned": bool(plan.assignments),
                "bundled": any(len(a.order_ids) >= 2 for a in plan.assignments),
                "prepositioned": bool(plan.prepositions),
                "greedy assigned": bool(plan_round(snap, GREEDY).assignments),
                # The edges stay in the draw: a busy courier, a shift about to end, late food.
                "busy courier": any(c.free_s > snap.now_s for c in snap.couriers),
                "shift ending": any(c.shift_end_s < snap.now_s + 900 for c in snap.couriers),
                "late food": any(o.ready_s > snap.now_s + 180 for o in snap.orders)}

    shares = _shares(snapshots(), measure)
    assert shares.get("assigned", 0) >= 0.7, shares
    assert shares.get("greedy assigned", 0) >= 0.7, shares
    assert shares.get("bundled", 0) >= 0.3, shares
    assert shares.get("prepositioned", 0) >= 0.1, shares
    for edge in ("busy courier", "shift ending", "late food"):
        assert shares.get(edge, 0) >= 0.05, (edge, shares)


def test_drawn_snapshots_with_waiting_couriers_mostly_yield_updates():
    shares = _shares(snapshots_with_waiting_couriers(),
                     lambda snap: {"updated": bool(plan_round(snap, DispatchPolicy()).reassignments)})
    assert shares.get("updated", 0) >= 0.5, shares
