"""Simulated couriers' hidden propensities: deterministic, and shaped as their traits say."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from lastmile.core.dispatch.acceptance import offer_features
from lastmile.core.geo import Point
from lastmile.sim.propensity import (
    NO_ANSWER,
    CourierTraits,
    accept_probability,
    answer,
    decide,
    draw_city_traits,
    draw_traits,
    features_seen,
)

NOON = 1_767_225_600.0 + 12 * 3600
CHOOSY = CourierTraits(base_logit=2.0, distance_per_km=-1.2, pay_per_dollar_min=1.0,
                       favourite_hour=12.0, hour_amplitude=0.0, extra_order_penalty=0.2,
                       response_median_s=10.0, response_sigma=0.5, ignore_p=0.0)


def offer(pickup_m: float, hour_s: float = NOON):
    return offer_features(pickup_m=pickup_m, trip_m=2000.0, n_orders=1, at_s=hour_s)


def test_same_seed_same_traits_and_same_answers():
    ids = [f"cou_{i}" for i in range(30)]
    a = draw_city_traits(ids, random.Random(4))
    b = draw_city_traits(reversed(ids), random.Random(4))
    assert a == b and a != draw_city_traits(ids, random.Random(5))
    f = offer(1500)
    answers = [[decide(a[i], f, rng) for i in ids] for rng in (random.Random(9), random.Random(9))]
    assert answers[0] == answers[1]


def test_a_distance_sensitive_courier_takes_near_offers_more_often():
    ps = [accept_probability(CHOOSY, offer(m)) for m in (0, 500, 1000, 2000, 4000, 8000)]
    assert all(x > y for x, y in zip(ps, ps[1:], strict=False))
    rng = random.Random(1)
    taken = {m: sum(decide(CHOOSY, offer(m), rng)[0] for _ in range(2000))
             for m in (300, 3000, 6000)}
    assert taken[300] > taken[3000] > taken[6000]


@given(st.floats(0, 20_000), st.floats(0, 20_000), st.integers(0, 2**32 - 1))
def test_probability_never_rises_with_the_pickup_distance(a, b, seed):
    traits = draw_traits(random.Random(seed))
    near, far = sorted((a, b))
    assert accept_probability(traits, offer(far)) <= accept_probability(traits, offer(near))
    assert 0.0 <= accept_probability(traits, offer(near)) <= 1.0


def test_better_paid_offers_are_taken_more_often():
    # The same trip in the lunch rush (x1.5, core.pay DEFAULT_POLICY) and at 3 pm
    cheap = offer_features(pickup_m=1000, trip_m=2000, n_orders=1, at_s=NOON + 3 * 3600)
    rich = offer_features(pickup_m=1000, trip_m=2000, n_orders=1, at_s=NOON)
    assert rich.pay_per_min > cheap.pay_per_min
    assert accept_probability(CHOOSY, rich) > accept_probability(CHOOSY, cheap)


def test_a_courier_prefers_its_favourite_hour():
    evening = replace(CHOOSY, favourite_hour=19.0, hour_amplitude=1.0)
    at7 = accept_probability(evening, offer(1000, NOON + 7 * 3600))
    at7am = accept_probability(evening, offer(1000, NOON - 5 * 3600))
    assert at7 > at7am


def test_a_flaky_courier_lets_offers_time_out_and_answers_come_after_a_delay():
    flaky = replace(CHOOSY, ignore_p=0.5)
    rng = random.Random(3)
    results = [decide(flaky, offer(500), rng) for _ in range(1000)]
    silent = [r for r in results if r[1] == NO_ANSWER]
    assert 400 < len(silent) < 600 and all(not acc for acc, _ in silent)
    delays = sorted(d for _, d in results if d != NO_ANSWER)
    assert delays[0] > 0 and 6 < delays[len(delays) // 2] < 16  # median ~ 10 s


def test_an_answer_after_the_expiry_is_a_no_a_second_after_it():
    slow = replace(CHOOSY, response_median_s=500.0, response_sigma=0.01)
    assert answer(slow, offer(100), random.Random(1), expires_in_s=60.0) == (False, 61.0)
    fast = replace(CHOOSY, response_median_s=5.0, response_sigma=0.01, base_logit=30.0)
    accept, after = answer(fast, offer(100), random.Random(1), expires_in_s=60.0)
    assert accept and math.isclose(after, 5.0, rel_tol=0.05)


def test_the_courier_reads_the_offer_from_where_it_is():
    merchant = Point(lat=37.44, lng=-122.16)
    here = Point(lat=37.45, lng=-122.16)  # ~1.1 km north
    f = features_seen(courier_at=here, merchant_at=merchant,
                      dropoffs=[Point(lat=37.43, lng=-122.16), Point(lat=37.42, lng=-122.16)],
                      at_s=NOON)
    assert 1050 < f.pickup_m < 1150 and 2150 < f.trip_m < 2300 and f.n_orders == 2
    assert f.pay_minor > 0 and f.hour == 12.0


def test_the_same_courier_answers_the_same_offer_the_same_way():
    from lastmile.sim.propensity import offer_rng

    traits = draw_traits(random.Random(2))
    f = offer(2500)
    first = decide(traits, f, offer_rng(7, "cou_1", ["o2", "o1"]))
    assert decide(traits, f, offer_rng(7, "cou_1", ["o1", "o2"])) == first
    others = {decide(traits, f, offer_rng(7, "cou_1", [f"o{i}"])) for i in range(20)}
    assert len(others) > 1


def test_the_offer_hour_is_the_citys_local_hour():
    # Noon in Los Angeles (UTC-8 in January) is 20:00 UTC: the courier reads 12, not 20.
    from lastmile.sim.scenarios import get_scenario

    sc = get_scenario("lunch")
    assert sc.utc_offset_min == -480
    la_noon = sc.day_start + 12 * 3600
    merchant, here = Point(lat=37.44, lng=-122.16), Point(lat=37.45, lng=-122.16)
    local = features_seen(courier_at=here, merchant_at=merchant, dropoffs=[merchant],
                          at_s=la_noon, pay=sc.local_pay())
    utc = features_seen(courier_at=here, merchant_at=merchant, dropoffs=[merchant], at_s=la_noon)
    assert local.hour == 12.0 and utc.hour == 20.0
