from lastmile.core.dispatch import TravelModel
from lastmile.core.dispatch.bundling import (
    bundle_excess_s,
    bundle_size_cap,
    generate_bundles,
    make_bundle,
    sequence_route,
)

MIN = 60.0
TRAVEL = TravelModel(metres_per_step=320.0, step_s=60.0)

KW = {"travel": TRAVEL, "pickup_service_s": 4 * MIN, "dropoff_service_s": 4 * MIN}


def bundles_of(orders, *, cap=4, gap=10 * MIN, extra=30 * MIN):
    return generate_bundles(
        orders, size_cap=cap, max_ready_gap_s=gap, max_extra_delay_s=extra, **KW
    )


def test_bundles_only_orders_of_the_same_merchant(an_order):
    orders = [
        an_order(order_id="a", merchant_id="r1"),
        an_order(order_id="b", merchant_id="r2"),
        an_order(order_id="c", merchant_id="r1"),
    ]
    bundles = bundles_of(orders)
    assert sorted(b.order_ids for b in bundles) == [("a", "c"), ("b",)]


def test_every_order_lands_in_exactly_one_bundle(an_order):
    orders = [an_order(order_id=f"o{i}", ready_s=i * 3 * MIN) for i in range(9)]
    ids = [i for b in bundles_of(orders, cap=2) for i in b.order_ids]
    assert sorted(ids) == sorted(o.order_id for o in orders)


def test_bundle_ready_time_is_the_latest_ready_time(an_order):
    b = make_bundle(
        [an_order(order_id="a", ready_s=5 * MIN), an_order(order_id="b", ready_s=9 * MIN)], **KW
    )
    assert b.ready_s == 9 * MIN


def test_orders_too_far_apart_in_ready_time_are_not_bundled(an_order):
    orders = [an_order(order_id="a", ready_s=0.0), an_order(order_id="b", ready_s=20 * MIN)]
    assert len(bundles_of(orders, gap=10 * MIN)) == 2


def test_food_already_ready_is_bundled_by_its_wait_from_now(an_order):
    # Both orders were ready 20 minutes apart and both wait now: picking them up together
    # makes neither wait longer, so with the round's clock the gap rule no longer splits them.
    orders = [an_order(order_id="a", placed_s=0.0, ready_s=0.0),
              an_order(order_id="b", placed_s=0.0, ready_s=20 * MIN)]
    assert len(bundles_of(orders, gap=10 * MIN, extra=5 * MIN)) == 2
    together = generate_bundles(orders, size_cap=4, max_ready_gap_s=10 * MIN,
                                max_extra_delay_s=5 * MIN, now_s=25 * MIN, **KW)
    assert [sorted(b.order_ids) for b in together] == [["a", "b"]]
    # The bundle keeps the real ready times (the costing credits the wait since then).
    assert together[0].ready_s == 20 * MIN and sorted(together[0].readies_s) == [0.0, 20 * MIN]
    # Food not ready yet still counts from its ready time.
    later = generate_bundles(orders, size_cap=4, max_ready_gap_s=10 * MIN,
                             max_extra_delay_s=5 * MIN, now_s=5 * MIN, **KW)
    assert len(later) == 2


def test_bundle_respects_the_size_cap(an_order):
    orders = [an_order(order_id=f"o{i}") for i in range(5)]
    assert max(len(b.order_ids) for b in bundles_of(orders, cap=2)) == 2


def test_bundling_that_adds_too_much_delay_is_refused(an_order):
    far = an_order(order_id="b", dropoff_x_m=-8000.0)
    orders = [an_order(order_id="a", dropoff_x_m=8000.0), far]
    assert len(bundles_of(orders, extra=5 * MIN)) == 2


def test_size_cap_grows_with_orders_per_courier():
    assert bundle_size_cap(n_orders=10, n_couriers=20, max_bundle_size=4) == 1
    assert bundle_size_cap(n_orders=30, n_couriers=10, max_bundle_size=4) == 3
    assert bundle_size_cap(n_orders=100, n_couriers=10, max_bundle_size=4) == 4
    assert bundle_size_cap(n_orders=5, n_couriers=0, max_bundle_size=3) == 3


def test_drop_off_sequence_serves_the_near_customer_first(an_order):
    near = an_order(order_id="near", dropoff_x_m=500.0)
    far = an_order(order_id="far", dropoff_x_m=3000.0)
    seq, offsets, end = sequence_route([far, near], **KW)
    assert [o.order_id for o in seq] == ["near", "far"]
    # 2 min pickup half-service, 2 min travel, 2 min drop-off half-service
    assert offsets[0] == 6 * MIN
    assert end == offsets[-1] + 2 * MIN


def test_a_single_order_bundle_has_no_excess(an_order):
    assert bundle_excess_s(make_bundle([an_order()], **KW)) == 0.0


def test_food_already_ready_is_bundled_from_now_beyond_the_exact_sequencing(an_order):
    # Six waiting orders ready 5 minutes apart (cap 6 > 4: runs built one by one): from now
    # none waits for another, so the 20-minute extra-delay rule keeps them together.
    orders = [an_order(order_id=f"o{i}", placed_s=0.0, ready_s=i * 5 * MIN) for i in range(6)]
    kw = {"size_cap": 6, "max_ready_gap_s": 30 * MIN, "max_extra_delay_s": 20 * MIN, **KW}
    assert len(generate_bundles(orders, **kw)) > 1
    together = generate_bundles(orders, now_s=30 * MIN, **kw)
    assert [len(b.order_ids) for b in together] == [6]
