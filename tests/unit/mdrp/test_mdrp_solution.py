from lastmile.sim.mdrp.feasibility import check_solution
from lastmile.sim.mdrp.instance import load_instance
from lastmile.sim.mdrp.runner import policy_named
from lastmile.sim.mdrp.simulation import simulate
from lastmile.sim.mdrp.solution import write_solution


def test_solution_files_have_the_exact_headers_and_pass_the_checker(tiny_instance, tmp_path):
    out = tmp_path / "out"
    for name in ("greedy", "optimised"):
        write_solution(simulate(load_instance(tiny_instance), policy_named(name)), out)
        orders = (out / "solution_info_orders.txt").read_text().splitlines()
        assert orders[0] == "order placement_time ready_time pickup_time dropoff_time courier"
        assert len(orders) == 1 + 4
        assignments = (out / "solution_info_assignments.txt").read_text().splitlines()
        assert assignments[0].split()[:3] == ["assignment_time", "pickup_time", "courier"]
        couriers = (out / "solution_info_couriers.txt").read_text().splitlines()
        assert couriers[0] == "courier departure_time origin destination"
        assert all("\t" not in line for line in orders + assignments + couriers)
        assert check_solution(tiny_instance, out) == []


def test_an_undelivered_order_is_written_with_na_times(instance_writer, tmp_path):
    folder = instance_writer(orders=[("o1", 640, 0, 0, "r1", 50)], couriers=[("c1", 0, 0, 0, 40)])
    write_solution(simulate(load_instance(folder), policy_named("optimised")), tmp_path / "o")
    lines = (tmp_path / "o" / "solution_info_orders.txt").read_text().splitlines()
    assert lines[1] == "o1 0 50 NA NA NA"


def test_couriers_moves_start_at_the_on_location_and_chain(tiny_instance, tmp_path):
    write_solution(simulate(load_instance(tiny_instance), policy_named("optimised")), tmp_path)
    rows = [
        ln.split() for ln in (tmp_path / "solution_info_couriers.txt").read_text().splitlines()[1:]
    ]
    last: dict[str, str] = {}
    for cid, _, origin, dest in rows:
        assert origin == last.get(cid, "0")
        last[cid] = dest
