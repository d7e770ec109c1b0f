"""Our own MDRP feasibility checker: re-read the written solution and the instance.

It trusts nothing from the run: every check is recomputed from the three
solution files and the instance folder, and every violation is listed by order
and courier. Checks:

- ``unknown_order`` / ``unknown_courier``: ids not in the instance;
- ``delivered_twice``: an order in two assignments or two order lines;
- ``pickup_before_ready`` / ``pickup_before_placement``;
- ``assigned_before_placement``: an order assigned before anyone knew it;
- ``pickup_after_off_time`` / ``pickup_before_on_time``;
- ``bundle_across_restaurants``;
- ``travel_too_fast``: a stop reached sooner than travel + service allow
  (restaurant from the previous stop, customers within a bundle);
- ``courier_in_two_places``: an assignment starting before the courier left its
  previous last stop, or moves that overlap or do not chain;
- ``times_mismatch``: the orders file disagrees with the assignments file;
- ``wrong_place``: by the courier's moves, it is not at the restaurant when it
  picks up or at the customer when it drops off (the MDRP evaluator's check).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from lastmile.sim.mdrp.instance import Courier, Instance, Order, load_instance
from lastmile.sim.mdrp.solution import ASSIGNMENTS_FILE, COURIERS_FILE, ORDERS_FILE, read_table


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    kind: str
    order_id: str | None
    courier_id: str | None
    detail: str


def check_solution(instance_dir: Path, solution_dir: Path) -> list[Violation]:
    """Every rule broken by the solution files in ``solution_dir`` (empty list = feasible)."""
    inst = load_instance(instance_dir)
    assignments = [
        (int(r[0]), int(r[1]), r[2], tuple(r[3:]))
        for r in read_table(solution_dir / ASSIGNMENTS_FILE)
    ]
    order_rows = read_table(solution_dir / ORDERS_FILE)
    out: list[Violation] = []
    out += _check_assignments(inst, assignments)
    out += _check_orders_file(inst, assignments, order_rows)
    out += _check_timeline(inst, assignments, _times(order_rows))
    move_rows = read_table(solution_dir / COURIERS_FILE)
    out += _check_moves(inst, move_rows)
    out += _check_places(inst, assignments, _times(order_rows), move_rows)
    return out


def _times(order_rows: list[list[str]]) -> dict[str, tuple[int, int]]:
    return {r[0]: (int(r[3]), int(r[4])) for r in order_rows if len(r) >= 6 and r[3] != "NA"}


Row = tuple[int, int, str, tuple[str, ...]]


def _check_assignments(inst: Instance, assignments: list[Row]) -> list[Violation]:
    couriers = {c.courier_id: c for c in inst.couriers}
    orders = {o.order_id: o for o in inst.orders}
    out: list[Violation] = []
    seen: set[str] = set()
    for row in assignments:
        cid = row[2]
        if cid not in couriers:
            out.append(
                Violation(
                    kind="unknown_courier",
                    order_id=None,
                    courier_id=cid,
                    detail=f"courier {cid} not in couriers.txt",
                )
            )
            continue
        out += _check_one_assignment(couriers[cid], orders, row, seen)
    return out


def _check_one_assignment(
    c: Courier, orders: dict[str, Order], row: Row, seen: set[str]
) -> list[Violation]:
    """Rules of one assignment line; ``seen`` collects order ids across lines."""
    at, pickup, cid, oids = row
    first = oids[0] if oids else None

    def v(kind: str, order_id: str | None, detail: str) -> Violation:
        return Violation(kind=kind, order_id=order_id, courier_id=cid, detail=detail)

    out: list[Violation] = []
    if pickup > c.off_time:
        out.append(v("pickup_after_off_time", first, f"pickup {pickup} > off_time {c.off_time}"))
    if at < c.on_time:
        out.append(v("pickup_before_on_time", first, f"assigned {at} < on_time {c.on_time}"))
    restaurants = set()
    for oid in oids:
        o = orders.get(oid)
        if o is None:
            out.append(v("unknown_order", oid, f"order {oid} not in orders.txt"))
            continue
        restaurants.add(o.restaurant_id)
        if oid in seen:
            out.append(v("delivered_twice", oid, "order in two assignments"))
        seen.add(oid)
        if pickup < o.ready_time:
            out.append(v("pickup_before_ready", oid, f"pickup {pickup} < ready {o.ready_time}"))
        if at < o.placement_time:
            out.append(
                v("assigned_before_placement", oid, f"assigned {at} < placement {o.placement_time}")
            )
    if len(restaurants) > 1:
        out.append(v("bundle_across_restaurants", first, f"restaurants {sorted(restaurants)}"))
    return out


def _check_orders_file(
    inst: Instance, assignments: list[Row], rows: list[list[str]]
) -> list[Violation]:
    by_order = {oid: (pickup, cid) for _, pickup, cid, oids in assignments for oid in oids}
    known = {o.order_id for o in inst.orders}
    out: list[Violation] = []
    seen: set[str] = set()
    for r in rows:
        oid = r[0]
        if oid not in known:
            out.append(
                Violation(
                    kind="unknown_order",
                    order_id=oid,
                    courier_id=None,
                    detail="order line for an order not in orders.txt",
                )
            )
            continue
        if oid in seen:
            out.append(
                Violation(
                    kind="delivered_twice",
                    order_id=oid,
                    courier_id=None,
                    detail="two lines in the orders file",
                )
            )
        seen.add(oid)
        delivered = len(r) >= 6 and r[3] != "NA"
        want = by_order.get(oid)
        got = (int(r[3]), r[5]) if delivered else None
        if want != got:
            out.append(
                Violation(
                    kind="times_mismatch",
                    order_id=oid,
                    courier_id=want[1] if want else None,
                    detail=f"orders file says {got}, assignments say {want}",
                )
            )
    return out


def _check_timeline(
    inst: Instance, assignments: list[Row], times: dict[str, tuple[int, int]]
) -> list[Violation]:
    """Per courier, assignments by pickup: reachable in time, never overlapping."""
    p = inst.params
    half_p, half_d = p.pickup_service_min // 2, p.dropoff_service_min // 2
    orders = {o.order_id: o for o in inst.orders}
    couriers = {c.courier_id: c for c in inst.couriers}
    out: list[Violation] = []
    for cid in sorted({a[2] for a in assignments} & couriers.keys()):
        c = couriers[cid]
        x, y, free = c.x, c.y, c.on_time
        mine = sorted((a for a in assignments if a[2] == cid), key=lambda a: (a[1], a[0]))
        for at, pickup, _, oids in mine:
            if any(o not in orders or o not in times for o in oids) or not oids:
                continue
            first = oids[0]
            if at < free:
                out.append(
                    Violation(
                        kind="courier_in_two_places",
                        order_id=first,
                        courier_id=cid,
                        detail=f"instructed at {at} while busy until {free}",
                    )
                )
            r = inst.restaurants[orders[first].restaurant_id]
            earliest = free + inst.travel_min(x, y, r.x, r.y) + half_p
            if pickup < earliest:
                out.append(
                    Violation(
                        kind="travel_too_fast",
                        order_id=first,
                        courier_id=cid,
                        detail=f"pickup {pickup} < earliest arrival {earliest}",
                    )
                )
            x, y, t = r.x, r.y, pickup + half_p
            for oid in oids:
                o = orders[oid]
                earliest = t + inst.travel_min(x, y, o.x, o.y) + half_d
                dropoff = times[oid][1]
                if dropoff < earliest:
                    out.append(
                        Violation(
                            kind="travel_too_fast",
                            order_id=oid,
                            courier_id=cid,
                            detail=f"drop-off {dropoff} < earliest {earliest}",
                        )
                    )
                x, y, t = o.x, o.y, max(dropoff, earliest) + half_d
            free = t
    return out


def _check_moves(inst: Instance, rows: list[list[str]]) -> list[Violation]:
    """Moves of each courier chain (origin = last destination) and never overlap."""
    couriers = {c.courier_id: c for c in inst.couriers}
    where = {rid: (r.x, r.y) for rid, r in inst.restaurants.items()}
    where.update({o.order_id: (o.x, o.y) for o in inst.orders})
    out: list[Violation] = []
    last: dict[str, tuple[str, int]] = {}
    for r in rows:
        cid, dep, origin, dest = r[0], int(r[1]), r[2], r[3]
        if cid not in couriers:
            out.append(
                Violation(
                    kind="unknown_courier",
                    order_id=None,
                    courier_id=cid,
                    detail=f"move of courier {cid} not in couriers.txt",
                )
            )
            continue
        c = couriers[cid]
        pos = {**where, "0": (c.x, c.y)}
        if dest not in pos or origin not in pos:
            out.append(
                Violation(
                    kind="unknown_stop",
                    order_id=None,
                    courier_id=cid,
                    detail=f"move {origin} -> {dest} names an unknown place",
                )
            )
            continue
        prev_dest, ready_at = last.get(cid, ("0", c.on_time))
        if origin != prev_dest or dep < ready_at:
            out.append(
                Violation(
                    kind="courier_in_two_places",
                    order_id=dest if dest in where and dest not in inst.restaurants else None,
                    courier_id=cid,
                    detail=f"move {origin}->{dest} at {dep}, but courier is at "
                    f"{prev_dest} from {ready_at}",
                )
            )
        last[cid] = (dest, dep + inst.travel_min(*pos[origin], *pos[dest]))
    return out


def _check_places(
    inst: Instance,
    assignments: list[Row],
    times: dict[str, tuple[int, int]],
    move_rows: list[list[str]],
) -> list[Violation]:
    """Where the moves put each courier at each pickup and drop-off time."""
    where = {rid: (r.x, r.y) for rid, r in inst.restaurants.items()}
    where.update({o.order_id: (o.x, o.y) for o in inst.orders})
    on = {c.courier_id: c for c in inst.couriers}
    timeline: dict[str, tuple[list[int], list[str]]] = {
        cid: ([c.on_time], ["0"]) for cid, c in on.items()
    }
    for cid, dep, origin, dest in (r[:4] for r in move_rows if r[0] in on):
        if origin not in {*where, "0"} or dest not in where:
            continue
        c = on[cid]
        ox, oy = (c.x, c.y) if origin == "0" else where[origin]
        times_, places = timeline[cid]
        times_ += [int(dep), int(dep) + inst.travel_min(ox, oy, *where[dest])]
        places += ["", dest]
    restaurant_of = {o.order_id: o.restaurant_id for o in inst.orders}
    checks = [
        (cid, pickup, restaurant_of.get(oids[0]), oids[0])
        for _, pickup, cid, oids in assignments
        if oids
    ]
    checks += [
        (cid, times[oid][1], oid, oid)
        for _, _, cid, oids in assignments
        for oid in oids
        if oid in times
    ]
    out: list[Violation] = []
    for cid, t, place, oid in checks:
        if cid not in timeline or place is None:
            continue
        times_, places = timeline[cid]
        at = places[bisect.bisect_left(times_, t) - 1]
        if at != place:
            out.append(
                Violation(
                    kind="wrong_place",
                    order_id=oid,
                    courier_id=cid,
                    detail=f"at {t} the moves put the courier at {at or 'travel'}, "
                    f"expected {place}",
                )
            )
    return out
