"""The checker catches violations injected into a hand-written feasible solution."""

import pytest

from lastmile.sim.mdrp.feasibility import check_solution

ORDERS = [("o1", 640, 0, 0, "r1", 10), ("o2", 3200, 640, 0, "r2", 20)]
RESTAURANTS = [("r1", 0, 0), ("r2", 3200, 0)]
GOOD = {
    "solution_info_assignments.txt": [
        "assignment_time pickup_time courier orders",
        "0 10 c1 o1",
        "18 28 c1 o2",
    ],
    "solution_info_orders.txt": [
        "order placement_time ready_time pickup_time dropoff_time courier",
        "o1 0 10 10 16 c1",
        "o2 0 20 28 34 c1",
    ],
    "solution_info_couriers.txt": [
        "courier departure_time origin destination",
        "c1 0 0 r1",
        "c1 12 r1 o1",
        "c1 18 o1 r2",
        "c1 30 r2 o2",
    ],
}


def write(folder, files):
    folder.mkdir(exist_ok=True)
    for name, lines in files.items():
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def violations(instance_writer, tmp_path, *, couriers=(("c1", 0, 0, 0, 120),), **edits):
    inst = instance_writer(orders=ORDERS, restaurants=RESTAURANTS, couriers=couriers)
    files = {k: list(v) for k, v in GOOD.items()}
    for name, (index, line) in edits.items():
        target = files[f"solution_info_{'couriers' if name == 'moves' else name}.txt"]
        if index is None:
            target.append(line)
        else:
            target[index] = line
    return check_solution(inst, write(tmp_path / "sol", files))


def test_the_hand_written_solution_is_feasible(instance_writer, tmp_path):
    assert violations(instance_writer, tmp_path) == []


@pytest.mark.parametrize(
    ("edits", "kind", "order"),
    [
        (
            {"assignments": (1, "0 9 c1 o1"), "orders": (1, "o1 0 10 9 16 c1")},
            "pickup_before_ready",
            "o1",
        ),
        ({"orders": (2, "o2 0 20 28 33 c1")}, "travel_too_fast", "o2"),
        ({"assignments": (2, "18 28 c1 o2 o1")}, "bundle_across_restaurants", "o2"),
        ({"assignments": (None, "0 10 c1 o1")}, "delivered_twice", "o1"),
        ({"assignments": (2, "15 28 c1 o2")}, "courier_in_two_places", "o2"),
        ({"moves": (3, "c1 13 o1 r2")}, "courier_in_two_places", None),
        ({"moves": (3, "c1 18 r1 r2")}, "courier_in_two_places", None),
        ({"orders": (1, "o1 0 10 11 16 c1")}, "times_mismatch", "o1"),
        ({"moves": (2, "c1 12 r1 o2")}, "wrong_place", "o1"),
        # idle since 18, leaves for r2 at 19, arrives 27: pickup 28 is 1 min into service
        ({"moves": (3, "c1 19 o1 r2")}, "service_too_short", "o2"),
        # picks up at 10 but leaves r1 at 11, before the 2 min of service are over
        ({"moves": (2, "c1 11 r1 o1")}, "service_too_short", "o1"),
        # drops off o1 at 16 and leaves at 17: the drop-off service is cut short
        ({"moves": (3, "c1 17 o1 r2")}, "service_too_short", "o1"),
    ],
)
def test_the_checker_names_each_injected_violation(instance_writer, tmp_path, edits, kind, order):
    found = violations(instance_writer, tmp_path, **edits)
    assert (kind, order) in {(v.kind, v.order_id) for v in found}
    assert all(v.courier_id in (None, "c1") for v in found)


def test_a_pickup_after_the_off_time_is_caught(instance_writer, tmp_path):
    found = violations(instance_writer, tmp_path, couriers=(("c1", 0, 0, 0, 20),))
    assert [(v.kind, v.order_id, v.courier_id) for v in found] == [
        ("pickup_after_off_time", "o2", "c1")
    ]


def test_an_assignment_before_the_order_is_placed_is_caught(instance_writer, tmp_path):
    inst = instance_writer(
        orders=[("o1", 640, 0, 5, "r1", 10), ORDERS[1]],
        restaurants=RESTAURANTS,
        couriers=(("c1", 0, 0, 0, 120),),
    )
    found = check_solution(inst, write(tmp_path / "sol", GOOD))
    assert [(v.kind, v.order_id) for v in found] == [("assigned_before_placement", "o1")]


def test_an_order_missing_from_the_orders_file_is_caught(instance_writer, tmp_path):
    inst = instance_writer(orders=ORDERS, restaurants=RESTAURANTS, couriers=(("c1", 0, 0, 0, 120),))
    files = {k: list(v) for k, v in GOOD.items()}
    del files["solution_info_orders.txt"][2]
    found = check_solution(inst, write(tmp_path / "sol", files))
    assert ("missing_order_line", "o2") in {(v.kind, v.order_id) for v in found}
