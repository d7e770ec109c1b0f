from lastmile.sim.mdrp.instance import load_instance
from lastmile.sim.mdrp.runner import policy_named
from lastmile.sim.mdrp.simulation import simulate


def test_a_lone_order_is_picked_up_at_ready_and_dropped_after_travel_and_service(instance_writer):
    folder = instance_writer(orders=[("o1", 640, 0, 0, "r1", 10)], couriers=[("c1", 0, 0, 0, 120)])
    result = simulate(load_instance(folder), policy_named("optimised"))
    d = result.deliveries["o1"]
    # pickup at ready (10); leave 2 min later; 2 min travel; drop-off 2 min after arrival
    assert (d.pickup_time, d.dropoff_time, d.courier_id) == (10, 16, "c1")


def test_no_pickup_after_the_couriers_off_time(instance_writer):
    folder = instance_writer(orders=[("o1", 640, 0, 0, "r1", 50)], couriers=[("c1", 0, 0, 0, 40)])
    for name in ("greedy", "optimised"):
        result = simulate(load_instance(folder), policy_named(name))
        assert result.deliveries == {}


def test_orders_are_not_assigned_before_they_are_placed(tiny_instance):
    inst = load_instance(tiny_instance)
    placed = {o.order_id: o.placement_time for o in inst.orders}
    for name in ("greedy", "optimised"):
        for a in simulate(inst, policy_named(name)).assignments:
            assert all(a.assignment_time >= placed[o] for o in a.order_ids)


def test_a_run_is_deterministic(tiny_instance):
    inst = load_instance(tiny_instance)
    first = simulate(inst, policy_named("optimised"))
    second = simulate(inst, policy_named("optimised"))
    assert first.assignments == second.assignments
    assert first.deliveries == second.deliveries
    assert first.moves == second.moves


def test_every_order_of_the_tiny_instance_is_delivered(tiny_instance):
    inst = load_instance(tiny_instance)
    for name in ("greedy", "optimised"):
        assert len(simulate(inst, policy_named(name)).deliveries) == 4


def test_prepositioning_moves_an_idle_courier_to_a_restaurant(instance_writer):
    folder = instance_writer(
        orders=[("o1", 640, 0, 0, "r1", 10), ("o2", 640, 0, 50, "r1", 70)],
        couriers=[("c1", 3200, 3200, 0, 120)],
    )
    result = simulate(load_instance(folder), policy_named("optimised"))
    assert any(m.destination == "r1" and m.origin != "0" for m in result.moves["c1"])
    nothing = simulate(load_instance(folder), policy_named("optimised", prepositioning=False))
    assert all(
        m.destination != "r1" or m.departure_time >= 50 or m.origin == "0"
        for m in nothing.moves["c1"]
    )


def test_policies_by_name_switch_the_variants():
    from lastmile.core.dispatch import PolicyKind

    assert policy_named("greedy").kind is PolicyKind.GREEDY
    plain = policy_named("optimised", prepositioning=False, updates=False)
    assert (plain.allow_prepositioning, plain.allow_updates) == (False, False)
