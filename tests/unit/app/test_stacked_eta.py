"""The live ETA of a stacked order follows its stop (app.dashboard.live_eta with ``via``)
and the route helper lists the stops ahead of an order's door (app.routes)."""

from lastmile.app.dashboard import live_eta
from lastmile.app.routes import RouteStop, stops_before_dropoff
from lastmile.core.geo import Point
from lastmile.core.orders import OrderStatus

COURIER = Point(lat=37.44, lng=-122.16)
M1 = Point(lat=37.441, lng=-122.16)
M2 = Point(lat=37.445, lng=-122.16)
DOOR_A = Point(lat=37.46, lng=-122.15)
DOOR_B = Point(lat=37.465, lng=-122.15)


def _eta(status, via=()):
    return live_eta(now=0.0, courier_at=COURIER, speed_mps=5.0, status=status, pickup=M2,
                    dropoff=DOOR_B, food_ready_at=None, via=via)


def test_a_stacked_order_arrives_after_the_stops_ahead_of_it():
    straight = _eta(OrderStatus.ASSIGNED)
    stacked = _eta(OrderStatus.ASSIGNED, via=(M1, M2, DOOR_A))
    assert stacked.eta_at > straight.eta_at and stacked.remaining_m > straight.remaining_m
    # Once picked up with the other door first, the ETA still runs through that door.
    assert (_eta(OrderStatus.PICKED_UP, via=(DOOR_A,)).eta_at
            > _eta(OrderStatus.PICKED_UP).eta_at)


def test_no_via_keeps_the_straight_estimate():
    assert _eta(OrderStatus.ASSIGNED, via=()) == _eta(OrderStatus.ASSIGNED)


def test_stops_ahead_skip_the_done_ones_and_stop_at_the_door():
    def stop(kind, oid, at, done=False):
        return RouteStop(kind=kind, merchant_id="m", order_ids=(oid,), at=at, done=done,
                         stack_id="stk_1")

    route = [stop("pickup", "a", M1, done=True), stop("pickup", "b", M2),
             stop("dropoff", "a", DOOR_A), stop("dropoff", "b", DOOR_B)]
    assert stops_before_dropoff(route, "a") == (M2,)
    assert stops_before_dropoff(route, "b") == (M2, DOOR_A)
    assert stops_before_dropoff(route, "zzz") == ()
