"""Write (and read back) the three MDRP solution files.

Format (the MDRP evaluator's): single-space separated, a header line, integer
minutes, ``NA`` for the times of an undelivered order.

- ``solution_info_assignments.txt``: assignment_time pickup_time courier order [order ...]
- ``solution_info_orders.txt``: order placement_time ready_time pickup_time dropoff_time courier
- ``solution_info_couriers.txt``: courier departure_time origin destination
"""

from __future__ import annotations

from pathlib import Path

from lastmile.sim.mdrp.simulation import SimResult

ASSIGNMENTS_FILE = "solution_info_assignments.txt"
ORDERS_FILE = "solution_info_orders.txt"
COURIERS_FILE = "solution_info_couriers.txt"
ASSIGNMENTS_HEADER = "assignment_time pickup_time courier orders"
ORDERS_HEADER = "order placement_time ready_time pickup_time dropoff_time courier"
COURIERS_HEADER = "courier departure_time origin destination"


def write_solution(result: SimResult, out: Path) -> tuple[Path, Path, Path]:
    """Write the three files into ``out`` (created if missing); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [ASSIGNMENTS_HEADER]
    for a in sorted(result.assignments, key=lambda a: (a.pickup_time, a.courier_id)):
        lines.append(
            " ".join([str(a.assignment_time), str(a.pickup_time), a.courier_id, *a.order_ids])
        )
    pa = out / ASSIGNMENTS_FILE
    pa.write_text("\n".join(lines) + "\n")
    lines = [ORDERS_HEADER]
    for o in result.instance.orders:
        d = result.deliveries.get(o.order_id)
        times = (str(d.pickup_time), str(d.dropoff_time), d.courier_id) if d else ("NA", "NA", "NA")
        lines.append(" ".join([o.order_id, str(o.placement_time), str(o.ready_time), *times]))
    po = out / ORDERS_FILE
    po.write_text("\n".join(lines) + "\n")
    lines = [COURIERS_HEADER]
    for cid in sorted(result.moves):
        for m in result.moves[cid]:
            lines.append(f"{cid} {m.departure_time} {m.origin} {m.destination}")
    pc = out / COURIERS_FILE
    pc.write_text("\n".join(lines) + "\n")
    return pa, po, pc


def read_table(path: Path) -> list[list[str]]:
    """Rows after the header, split on single spaces; blank lines skipped."""
    rows = [ln.split(" ") for ln in path.read_text().splitlines()[1:] if ln.strip()]
    return rows
