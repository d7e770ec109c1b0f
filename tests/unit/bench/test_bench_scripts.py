"""The bench scripts' summaries and generators, on small literal inputs, so the benches
cannot silently rot or flatter: errors are counted by status and code, the ping mix yields
every verdict it claims, the dispatch rounds are not trivial, the output keys stay."""

from __future__ import annotations

import random
import sys
from collections import Counter

import api_orders
import dispatch_scaling
import harness
import httpx
import mdrp
import pings
import pytest
import sim_day

from lastmile.core.dispatch import DispatchPolicy, plan_round, round_costs
from lastmile.core.errors import InvalidInput
from lastmile.core.tracking import TrackingPolicy, classify_batch, start_track, validate_ping
from lastmile.sim.scenarios import get_scenario

# --- harness -------------------------------------------------------------------------------


def test_an_error_answer_is_keyed_by_status_and_problem_code():
    assert harness.error_key(409, b'{"code": "offer_expired", "status": 409}') == "409 offer_expired"
    assert harness.error_key(500, b"Internal Server Error") == "500"


def test_the_tally_passes_success_and_counts_each_refusal_by_status_and_code():
    tally = harness.Tally()
    assert tally.answer(httpx.Response(201, json={"id": "o1"}))
    assert not tally.answer(httpx.Response(409, json={"code": "concurrent_update"}))
    assert not tally.answer(httpx.Response(409, json={"code": "concurrent_update"}))
    assert not tally.answer(httpx.Response(500, text="boom"))
    tally.add("transport ReadTimeout")
    assert tally.summary() == {"errors": 4, "errors_by": {
        "409 concurrent_update": 2, "500": 1, "transport ReadTimeout": 1}}


def test_the_percentile_of_no_sample_is_null_not_nan():
    assert harness.percentile([], 0.99) is None
    assert harness.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 3.0


# --- pings ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 0.2
        return self.now


def _classified(feed: pings.Feed, clock: Clock, uploads: int, batch: int) -> tuple[Counter, int]:
    """Run a feed's uploads through the core's validation and classification."""
    policy = TrackingPolicy()
    state = start_track(courier_id="c0", main_device_id=feed.main_device, started_at=clock.now,
                        banned_device_ids=frozenset({feed.banned_device}))
    reasons: Counter[str] = Counter()
    refused = 0
    for _ in range(uploads):
        up = feed.next_upload(batch)
        try:
            checked = [validate_ping(courier_id="c0", received_ts=clock.now, policy=policy, **p)
                       for p in up.pings]
        except InvalidInput:
            refused += 1
            continue
        state, verdicts = classify_batch(state, checked, policy)
        reasons.update(v.reason.value for v in verdicts)
    return reasons, refused


@pytest.mark.parametrize("batch", [1, 20])
def test_the_ping_mix_yields_every_verdict_it_claims_and_refused_uploads(batch):
    clock = Clock()
    boosted = pings.Mix(retried_uploads=0.1, late_pings=0.1, low_accuracy_pings=0.1,
                        banned_uploads=0.1, invalid_uploads=0.05)
    feed = pings.Feed(index=0, rng=random.Random(3), mix=boosted, clock=clock, second_phone=True)
    reasons, refused = _classified(feed, clock, uploads=300, batch=batch)
    assert {"accepted", "duplicate", "out_of_order", "not_main_device", "banned_device",
            "low_accuracy"} <= set(reasons)
    assert refused > 0
    assert reasons["accepted"] > sum(reasons.values()) / 4


def test_the_default_ping_mix_keeps_its_stated_shares():
    feed = pings.Feed(index=1, rng=random.Random(11), clock=Clock())
    kinds = Counter(feed.next_upload(10).kind for _ in range(20_000))
    share = {k: n / 20_000 for k, n in kinds.items()}
    assert share["banned"] == pytest.approx(pings.MIX.banned_uploads, abs=0.003)
    assert share["retry"] == pytest.approx(pings.MIX.retried_uploads, abs=0.004)
    assert share["invalid"] == pytest.approx(pings.MIX.invalid_uploads, abs=0.002)
    assert "second" not in share  # only couriers given a second phone upload from one


def test_the_pings_summary_reports_accepted_throughput_tails_per_ping_and_errors():
    tally = harness.Tally()
    tally.add("422 invalid_lat")
    answers = [
        pings.Answer(kind="main", pings=10, ok=True, ms=20.0, accepted=8,
                     reasons=("accepted",) * 8 + ("duplicate", "out_of_order")),
        pings.Answer(kind="invalid", pings=10, ok=False, ms=5.0),
    ]
    out = pings.summarise(answers, 2.0, tally, batch=10, couriers=1)
    assert out["pings_per_s"] == 4.0 and out["sent_per_s"] == 10.0
    assert out["accepted_share"] == 0.4
    assert (out["p99_ms"], out["p99_ms_per_ping"]) == (20.0, 2.0)
    assert out["by_reason"] == {"accepted": 8, "duplicate": 1, "out_of_order": 1}
    assert out["errors"] == 1 and out["errors_by"] == {"422 invalid_lat": 1}


def test_the_pings_last_line_keeps_its_historical_keys():
    run = pings.summarise([], 1.0, harness.Tally(), batch=1, couriers=1)
    line = pings.final_line({"single": run, "batch": run, "redis": run})
    assert {"single_per_s", "batch_per_s", "redis_batch_per_s", "p99_ms",
            "batch_p99_ms", "batch_p99_ms_per_ping", "errors"} <= set(line)


# --- api_orders ----------------------------------------------------------------------------


def test_integrity_counts_orders_held_but_not_listed_and_listed_but_not_held():
    orders = [("o1", "c1", "assigned"), ("o2", "c1", "picked_up"), ("o3", "c2", "delivered"),
              ("o4", None, "confirmed")]
    assert api_orders.integrity(orders, [("c1", ["o1", "o2"]), ("c2", [])]) == {
        "held_not_listed": 0, "listed_not_held": 0}
    # c1's record lost o2 (a blind save over an accept), c2 still lists a delivered order
    assert api_orders.integrity(orders, [("c1", ["o1"]), ("c2", ["o3"])]) == {
        "held_not_listed": 1, "listed_not_held": 1}


def test_the_orders_summary_carries_placement_and_lifecycle_errors():
    placements = harness.Tally()
    placements.add("500")
    side = api_orders.Side()
    side.tally["courier"].add("409 offer_expired", 3)
    side.counts.update({"delivered": 6, "offers_accepted": 2})
    side.latencies.extend([10.0, 30.0])
    out = api_orders.summarise([5.0, 7.0], 2.0, placements, side, clients=2)
    assert (out["orders_per_s"], out["errors"], out["errors_by"]) == (1.0, 1, {"500": 1})
    assert out["lifecycle_errors"] == 3
    assert out["lifecycle_errors_by"]["courier"] == {"409 offer_expired": 3}
    assert out["delivered_per_s"] == 3.0
    line = api_orders.final_line({"sqlite": {**out, "integrity": {}}})
    assert {"orders_per_s", "p50_ms", "p99_ms", "errors", "errors_by"} <= set(line["sqlite"])


# --- dispatch_scaling ----------------------------------------------------------------------


def test_the_synthetic_lunch_round_bundles_grows_committed_bundles_and_assigns():
    snap = dispatch_scaling.synthetic(200, seed=200)
    policy = DispatchPolicy()
    made = dispatch_scaling.decisions(snap, round_costs(snap, policy), plan_round(snap, policy))
    assert made["merchants"] > 0 and made["committed"] > 0
    assert made["multi_order_bundles"] > 0
    assert made["reassignments"] > 0 and made["assignments"] > 0


def test_the_scaling_bench_reports_the_median_and_its_spread_not_the_best_run():
    assert dispatch_scaling.spread([5.0, 1.0, 3.0]) == {"median": 3.0, "min": 1.0, "max": 5.0}
    row = dispatch_scaling.measure(40, DispatchPolicy(), repeats=3, dense_up_to=40)
    assert row["statistic"] == "median"
    assert row["round_ms_min"] <= row["round_ms"] <= row["round_ms_max"]
    line = dispatch_scaling.summarise([row, replace_size(row, 80)])
    assert {"sizes", "round_ms", "solve_ms", "ratio_at_2000", "exponent"} <= set(line)


def test_the_scaling_bench_times_the_sparse_solve_of_a_sparse_round_and_compares_dense():
    policy = DispatchPolicy(dense_up_to_pairs=0)  # every round sparse, even this small one
    row = dispatch_scaling.measure(120, policy, repeats=1, dense_up_to=120)
    assert row["solver"] == "sparse" and row["arcs"] > 0
    assert row["sparse_served"] > 0 and row["dense_served"] >= row["sparse_served"] - 5
    assert row["assignments"] > 0 and row["dense_round_ms"] is not None
    cells = dispatch_scaling.measure(120, DispatchPolicy(dense_up_to_pairs=0, cell_bundles=20),
                                     repeats=1, dense_up_to=0)
    assert cells["solver"] == "sparse_cells" and cells["dense_round_ms"] is None


def test_the_synthetic_city_keeps_its_density_as_it_grows():
    assert dispatch_scaling.side_m(4000) == 12_000.0
    assert dispatch_scaling.side_m(16000) == 24_000.0


def replace_size(row: dict, size: int) -> dict:
    return {**row, "size": size, "round_ms": row["round_ms"] * 2}


def test_the_scaling_bench_times_the_engines_own_cost_and_carries_no_copy():
    source = (harness.ROOT / "bench" / "dispatch_scaling.py").read_text()
    assert "round_costs" in source
    assert "pair_costs" not in source and "generate_bundles" not in source




# --- mdrp ----------------------------------------------------------------------------------


def test_the_mdrp_summary_says_the_policy_was_tuned_on_these_instances():
    row = {"instance": "0o50t75s1p100", "orders": 10, "delivered": 10, "c2d_mean": 30.0,
           "floor_mean": 29.0, "r2p_mean": 1.0, "utilisation": 0.8, "cost_per_order": 10.0,
           "bundles": 10, "total_pay": 100.0, "feasible": True, "wall_s": 0.1}
    out = mdrp.final_summary([{**row, "policy": "optimised"}, {**row, "policy": "greedy"}], 1.0)
    assert out["c2d_excess"] == 1.0
    assert "../shared/mdrp" in str(out["policy_tuned_on"])
    assert "seeds 0-2" in str(out["policy_tuned_on"])
    assert out["greedy"]["instances"] == 1


@pytest.mark.parametrize(
    ("name", "split"),
    [("0o50t75s1p100", "tuning"), ("1r50t100s2p125", "tuning"), ("2o100t100s1p100", "tuning"),
     ("3o50t75s1p100", "validation"), ("4r50t100s2p125", "validation")],
)
def test_an_mdrp_instance_is_tuning_for_seeds_0_to_2_and_validation_for_seeds_3_and_4(
    name, split
):
    assert mdrp.split_of(name) == split


@pytest.mark.parametrize("name", ["5o50t75s1p100", "9r50t100s2p125", "o50t75s1p100", "3", ""])
def test_an_mdrp_instance_of_another_seed_or_without_one_is_refused(name):
    with pytest.raises(ValueError, match="seed 0-4"):
        mdrp.split_of(name)


def test_the_mdrp_summary_reports_tuning_and_validation_seeds_apart():
    def row(name: str, c2d: float, delivered: int) -> dict[str, object]:
        return {"instance": name, "policy": "optimised", "orders": 10, "delivered": delivered,
                "c2d_mean": c2d, "floor_mean": 30.0, "r2p_mean": 1.0, "utilisation": 0.8,
                "cost_per_order": 10.0, "bundles": delivered, "total_pay": 100.0,
                "feasible": True, "wall_s": 0.1}

    rows = [row("0o50t75s1p100", 31.0, 10), row("2o50t75s1p100", 33.0, 10),
            row("3o50t75s1p100", 32.0, 9), row("4o50t75s1p100", 32.0, 10)]
    out = mdrp.final_summary(rows, 1.0)
    assert out["instances"] == 4
    assert out["tuning"]["instances"] == out["validation"]["instances"] == 2
    assert out["tuning"]["c2d_excess"] == 2.0
    assert out["validation"]["c2d_excess"] == 2.0
    assert out["validation"]["undelivered_share"] == 1 / 20
    assert out["tuning"]["undelivered_share"] == 0.0
    assert set(out["tuning"]) == set(out["validation"]) == set(out["greedy"])


def test_the_mdrp_bench_refuses_a_root_without_instances(tmp_path, monkeypatch, capsys):
    # An empty summary would read as a result: no instance is a usage error, exit 2.
    monkeypatch.setattr(sys, "argv", ["mdrp.py", "--root", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        mdrp.main()
    assert exc.value.code == 2 and "no MDRP instance" in capsys.readouterr().err


# --- sim_day -------------------------------------------------------------------------------


def test_the_big_day_deals_every_region_to_exactly_one_process_round_robin():
    sc = get_scenario("bigcity")
    groups = sim_day.region_groups(sc, 3)
    keys = [[c.key for c in g.cities] for g in groups]
    assert keys == [[c.key for c in sc.cities[k::3]] for k in range(3)]
    assert sorted(k for g in keys for k in g) == sorted(c.key for c in sc.cities)
    assert len(sim_day.region_groups(sc, 20)) == len(sc.cities)  # no empty group
    with pytest.raises(SystemExit):
        sim_day.region_groups(sc, 0)


def test_the_big_days_groups_sum_orders_cpu_and_split_and_keep_the_slowest_phases():
    def part(placed, cpu, ping, world):
        return {"orders_placed": placed, "orders_delivered": placed - 1, "cpu_s": cpu,
                "build_s": 1.0, "world_s": world, "settle_s": 2.0, "build_cpu_s": 0.5,
                "settle_cpu_s": 1.0,
                "split_s": {"ping": ping}, "split_calls": {"ping": 10}}

    out = sim_day.merged([part(100, 4.0, 1.5, 30.0), part(50, 2.0, 0.5, 40.0)], wall_s=45.0)
    assert (out["orders_placed"], out["orders_delivered"], out["cpu_s"]) == (150, 148, 6.0)
    assert out["split_s"] == {"ping": 2.0} and out["split_calls"] == {"ping": 20}
    assert (out["world_s"], out["wall_s"], out["settle_cpu_s"]) == (40.0, 45.0, 2.0)
