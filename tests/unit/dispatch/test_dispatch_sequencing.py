"""The batched bundle code (``sequencing``; ``generate_bundles`` and ``plan_updates`` on
it) decides exactly what the one-at-a-time rules (``reference``) decide."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import generate_bundles as reference_bundles
from reference import plan_updates as reference_updates
from strategies import snapshots, snapshots_with_waiting_couriers

from lastmile.core.dispatch import DispatchPolicy, OpenOrder, TravelModel
from lastmile.core.dispatch.bundling import bundle_excess_s, generate_bundles, make_bundle
from lastmile.core.dispatch.sequencing import OrderTable, evaluate, travel_seconds
from lastmile.core.dispatch.updates import plan_updates

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import dispatch_scaling  # noqa: E402

MODELS = [TravelModel(metres_per_step=320.0, step_s=60.0),
          TravelModel(metres_per_step=4.5, step_s=1.0),
          TravelModel(metres_per_step=7.3, step_s=2.5)]
coords = st.one_of(st.integers(-20_000, 20_000).map(float),
                   st.floats(-20_000, 20_000, allow_nan=False))


@settings(max_examples=100, deadline=None)
@given(model=st.sampled_from(MODELS), points=st.lists(st.tuples(coords, coords, coords, coords),
                                                      min_size=1, max_size=40),
       steps=st.lists(st.integers(0, 60), min_size=1, max_size=40))
def test_travel_seconds_equal_seconds_between(model, points, steps):
    # Also distances on a step boundary exactly (along an axis, a multiple of the step).
    points = points + [(0.0, 0.0, s * model.metres_per_step, 0.0) for s in steps]
    ax, ay, bx, by = (np.array(v) for v in zip(*points, strict=True))
    got = travel_seconds(model, ax, ay, bx, by)
    assert got.tolist() == [model.seconds_between(*p) for p in points]


def _orders(draw: st.DrawFn, n: int) -> list[OpenOrder]:
    out = []
    for i in range(n):
        ready = draw(st.integers(-30, 30)) * 60.0
        out.append(OpenOrder(order_id=f"o{i}", merchant_id="r", placed_s=ready - 600.0,
                             ready_s=ready, pickup_x_m=draw(st.sampled_from([0.0, 10.5])),
                             pickup_y_m=0.0, dropoff_x_m=draw(coords), dropoff_y_m=draw(coords)))
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data(), size=st.integers(1, 5), trials=st.integers(1, 6),
       model=st.sampled_from(MODELS), services=st.sampled_from([(240.0, 240.0), (90.0, 45.0)]))
def test_evaluate_equals_make_bundle(data, size, trials, model, services):
    orders = _orders(data.draw, 8)
    table = OrderTable.of(orders)
    rows = np.array([data.draw(st.permutations(range(8)))[:size] for _ in range(trials)],
                    dtype=np.intp)
    kw = {"travel": model, "pickup_service_s": services[0], "dropoff_service_s": services[1]}
    got = evaluate(table, rows, **kw)
    for t, row in enumerate(rows.tolist()):
        want = make_bundle([orders[i] for i in row], **kw)
        assert tuple(orders[i].order_id for i in got.seq[t]) == want.order_ids
        assert float(got.ready_s[t]) == want.ready_s
        assert float(got.route_s[t]) == want.route_s
        assert float(got.detour_s[t]) == want.detour_s
        assert float(got.last_leg_end_s[t]) == want.last_leg_end_s
        assert float(got.excess_s[t]) == bundle_excess_s(want)


@settings(max_examples=60, deadline=None)
@given(snap=snapshots(), cap=st.integers(1, 6), gap=st.sampled_from([0.0, 300.0, 600.0, 3600.0]),
       extra=st.sampled_from([0.0, 300.0, 900.0, 1e9]))
def test_generate_bundles_equals_the_one_at_a_time_rule(snap, cap, gap, extra):
    kw = {"travel": snap.travel, "pickup_service_s": snap.pickup_service_s,
          "dropoff_service_s": snap.dropoff_service_s, "size_cap": cap,
          "max_ready_gap_s": gap, "max_extra_delay_s": extra}
    assert generate_bundles(snap.orders, **kw) == reference_bundles(snap.orders, **kw)


@settings(max_examples=60, deadline=None)
@given(snap=snapshots_with_waiting_couriers(), size=st.integers(1, 6),
       delay=st.sampled_from([0.0, 120.0, 1200.0]), extra=st.sampled_from([0.0, 900.0, 1e9]))
def test_plan_updates_equals_the_one_at_a_time_rule(snap, size, delay, extra):
    policy = DispatchPolicy(max_bundle_size=size, max_update_delay_s=delay,
                            max_extra_delay_s=extra)
    assert plan_updates(snap, policy) == reference_updates(snap, policy)


def test_a_city_round_is_bundled_and_updated_as_one_at_a_time():
    """Many couriers waiting at the same hot merchants (several waves), bundles up to 4."""
    snap = dispatch_scaling.synthetic(1500, seed=3)
    for policy in (DispatchPolicy(), DispatchPolicy(max_bundle_size=6, max_update_delay_s=900)):
        got = plan_updates(snap, policy)
        assert got == reference_updates(snap, policy)
        assert len(got[0]) > 50
    orders = snap.orders[:1200]
    for cap in (2, 4):
        kw = {"travel": snap.travel, "pickup_service_s": 240.0, "dropoff_service_s": 240.0,
              "size_cap": cap, "max_ready_gap_s": 600.0, "max_extra_delay_s": 900.0}
        got_b = generate_bundles(orders, **kw)
        assert got_b == reference_bundles(orders, **kw)
        assert sum(len(b.order_ids) > 1 for b in got_b) > 50
