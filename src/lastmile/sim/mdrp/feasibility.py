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
- ``missing_order_line``: an order of the instance has no line in the orders file;
- ``wrong_place``: by the courier's moves, it is not at the restaurant when it
  picks up or at the customer when it drops off (the MDRP evaluator's check);
- ``service_too_short``: by the courier's moves, a pickup or drop-off falls
  less than half its service time after the courier arrived at the stop, or
  the courier leaves the stop less than half the service time after it.

``travel_too_fast`` assumes a courier leaves as soon as it is free, so it is a
lower bound; ``service_too_short`` measures from the moves' real departures and
catches a courier that left late (for instance only when instructed) yet picks
up as if it had left on time.
"""

from __future__ import annotations

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
    out += _check_stops(inst, assignments, _times(order_rows), move_rows)
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
    return out + _missing_lines(inst, {r[0] for r in rows})


def _missing_lines(inst: Instance, listed: set[str]) -> list[Violation]:
    """The orders file holds one line per order of the instance (``NA`` if undelivered)."""
    return [
        Violation(
            kind="missing_order_line",
            order_id=o.order_id,
            courier_id=None,
            detail="no line in the orders file (expected one per order, NA if undelivered)",
        )
        for o in inst.orders
        if o.order_id not in listed
    ]


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


Visit = tuple[str, int, float]  # place, arrival minute, departure minute (inf: stays)


def _visits(inst: Instance, move_rows: list[list[str]]) -> dict[str, list[Visit]]:
    """Per courier, the stops its moves put it at, in file order (unknown places skipped)."""
    where = {rid: (r.x, r.y) for rid, r in inst.restaurants.items()}
    where.update({o.order_id: (o.x, o.y) for o in inst.orders})
    couriers = {c.courier_id: c for c in inst.couriers}
    out: dict[str, list[Visit]] = {
        cid: [("0", c.on_time, float("inf"))] for cid, c in couriers.items()
    }
    for cid, dep, origin, dest in (r[:4] for r in move_rows if r[0] in couriers):
        if origin not in {*where, "0"} or dest not in where:
            continue
        c = couriers[cid]
        ox, oy = (c.x, c.y) if origin == "0" else where[origin]
        visits = out[cid]
        place, arrival, _ = visits[-1]
        visits[-1] = (place, arrival, float(dep))
        visits.append((dest, int(dep) + inst.travel_min(ox, oy, *where[dest]), float("inf")))
    return out


def _check_stops(
    inst: Instance,
    assignments: list[Row],
    times: dict[str, tuple[int, int]],
    move_rows: list[list[str]],
) -> list[Violation]:
    """By the moves, each pickup and drop-off happens at its stop, inside the service.

    ``wrong_place``: no stay of the courier at the restaurant (pickup) or the
    customer (drop-off) covers the event time. ``service_too_short``: MDRP's
    pickup >= arrival + half the pickup service and drop-off = arrival + half
    the drop-off service, each followed by the other half before leaving.
    """
    p = inst.params
    half = {"pickup": p.pickup_service_min / 2, "drop-off": p.dropoff_service_min / 2}
    visits = _visits(inst, move_rows)
    restaurant_of = {o.order_id: o.restaurant_id for o in inst.orders}
    events = [
        (cid, restaurant_of.get(oids[0]), pk, oids[0], "pickup")
        for _, pk, cid, oids in assignments
        if oids
    ]
    events += [
        (cid, oid, times[oid][1], oid, "drop-off")
        for _, _, cid, oids in assignments
        for oid in oids
        if oid in times
    ]
    out: list[Violation] = []
    for cid, place, t, oid, what in events:
        if cid not in visits or place is None:
            continue
        stays = [v for v in visits[cid] if v[1] <= t <= v[2]]
        at = next((v for v in reversed(stays) if v[0] == place), None)
        if at is None:
            seen = stays[-1][0] if stays else "travel"
            detail = f"at {t} the moves put the courier at {seen}, expected {place}"
            out.append(Violation(kind="wrong_place", order_id=oid, courier_id=cid, detail=detail))
        elif not at[1] + half[what] <= t <= at[2] - half[what]:
            detail = (
                f"{what} at {t} while at {place} from {at[1]} to {at[2]:g}; expected within "
                f"[{at[1] + half[what]:g}, {at[2] - half[what]:g}]"
            )
            out.append(
                Violation(kind="service_too_short", order_id=oid, courier_id=cid, detail=detail)
            )
    return out
