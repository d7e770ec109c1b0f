"""Invariants of experiment assignment (issue 13): determinism, weights respected, layers
exclusive, strata balanced, switchback exclusions only around a switch, and team draft's
competitive groups."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from lastmile.core.experiments.assignment import (
    Span,
    Switchback,
    Variant,
    allocate,
    assign,
    bucket,
    in_layer,
    stratify,
    switchback,
    team_draft,
)

IDS = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
WEIGHTS = st.lists(st.floats(0.05, 10), min_size=2, max_size=5)


def arms(weights: list[float]) -> tuple[Variant, ...]:
    return tuple(Variant(name="control" if i == 0 else f"v{i}", weight=w)
                 for i, w in enumerate(weights))


@given(IDS, IDS, WEIGHTS)
def test_the_same_salt_and_unit_always_get_the_same_variant(salt, unit, weights):
    variants = arms(weights)
    assert assign(salt, unit, variants) == assign(salt, unit, variants)
    assert 0.0 <= bucket(salt, unit) < 1.0


@settings(max_examples=25, deadline=None)
@given(IDS, WEIGHTS)
def test_shares_follow_the_weights_statistically(salt, weights):
    variants = arms(weights)
    n = 4_000
    counts = Counter(assign(salt, f"con_{i}", variants).name for i in range(n))
    total = sum(weights)
    expected = [n * w / total for w in weights]
    observed = [counts.get(v.name, 0) for v in variants]
    # A chi-square goodness of fit: a correct hash fails it 1 time in 10^4.
    assert stats.chisquare(observed, expected).pvalue > 1e-4


@given(IDS, st.lists(st.floats(0.01, 0.5), min_size=1, max_size=6), st.floats(0, 0.5),
       st.lists(IDS, min_size=1, max_size=40))
def test_two_experiments_of_one_layer_never_take_the_same_unit(layer, shares, holdout, units):
    taken: list[Span] = []
    for share in shares:
        try:
            taken.append(allocate(taken, holdout=holdout, share=share))
        except Exception:  # noqa: BLE001 - a full layer refuses the next share: fine here
            break
    for unit in units:
        inside = [s for s in taken if in_layer(layer, unit, s)]
        assert len(inside) <= 1
        if bucket(f"layer:{layer}", unit) < holdout:
            assert inside == []
    for a in taken:
        assert a.low >= holdout
        for b in taken:
            assert a is b or a.high <= b.low or b.high <= a.low


@given(IDS, st.dictionaries(IDS, st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)),
                            min_size=2, max_size=60),
       st.integers(2, 3))
def test_every_stratum_has_equal_counts_per_arm_to_one(salt, metrics, n_arms):
    names = ["control", *(f"t{i}" for i in range(1, n_arms))]
    slots = stratify(salt, metrics, names)
    assert sorted(s.market for s in slots) == sorted(metrics)
    by_stratum: dict[str, Counter[str]] = {}
    for s in slots:
        by_stratum.setdefault(s.stratum, Counter())[s.variant] += 1
    for counts in by_stratum.values():
        per_arm = [counts.get(a, 0) for a in names]
        assert max(per_arm) - min(per_arm) <= 1
    assert stratify(salt, metrics, names) == slots
    assert len(by_stratum) <= 9


def test_stratified_terciles_make_nine_strata_of_equal_arms():
    metrics = {f"m{i:02d}": (float(i % 9 // 3), float(i % 3)) for i in range(36)}
    slots = stratify("s", metrics, ["control", "treatment"])
    strata = Counter(s.stratum for s in slots)
    assert len(strata) == 9 and set(strata.values()) == {4}
    for stratum in strata:
        arms_in = Counter(s.variant for s in slots if s.stratum == stratum)
        assert arms_in == Counter(control=2, treatment=2)


@given(IDS, IDS, st.floats(0, 10 * 86_400), st.floats(60, 7_200), st.floats(0, 0.45),
       st.floats(0, 0.45))
def test_switchback_excludes_only_around_a_switch(salt, region, t, window_s, burn, wash):
    timing = Switchback(origin_s=1_000.0, window_s=window_s, burn_in_s=burn * window_s,
                        wash_out_s=wash * window_s)
    variants = arms([1.0, 1.0])
    at = 1_000.0 + t
    rel = at - 1_000.0
    slot = switchback(salt, region, at, timing, variants)
    assert slot is not None
    assert slot.unit == f"{region}@{slot.window}"
    assert slot.window == math.floor(rel / window_s)
    before = switchback(salt, region, 1_000.0 + (slot.window - 0.5) * window_s, timing,
                        variants)
    after = switchback(salt, region, 1_000.0 + (slot.window + 1.5) * window_s, timing,
                       variants)
    offset = rel - slot.window * window_s
    in_burn = offset < timing.burn_in_s and before is not None and slot.window > 0
    in_wash = offset >= window_s - timing.wash_out_s
    switched_in = in_burn and before is not None and before.variant != slot.variant
    switched_out = in_wash and after is not None and after.variant != slot.variant
    assert slot.counts == (not (switched_in or switched_out))
    assert switchback(salt, region, 999.0, timing, variants) is None


@given(st.lists(st.lists(st.sampled_from("ABCDEFGHIJ"), min_size=0, max_size=10),
                min_size=2, max_size=4), IDS)
def test_team_draft_scores_groups_of_n_with_equal_picks_per_ranker(rankings, seed):
    merged = team_draft(rankings, seed)
    items = [d.item for d in merged]
    assert len(items) == len(set(items))
    assert set(items) == {i for r in rankings for i in r}
    competitive = Counter(d.ranker for d in merged if d.competitive)
    n = len(rankings)
    assert sum(competitive.values()) % n == 0
    assert len(set(competitive.values())) <= 1
    if competitive:
        assert set(competitive) == set(range(n))
    assert team_draft(rankings, seed) == merged


def test_team_draft_nearly_identical_lists_score_only_the_last_two():
    merged = team_draft([list("12345"), list("12346")], "seed")
    assert [d.competitive for d in merged] == [False, False, False, False, True, True]
    assert {d.item: d.ranker for d in merged if d.competitive} == {"5": 0, "6": 1}


def test_team_draft_an_item_both_prefer_is_not_scored():
    merged = team_draft([["A", "B"], ["A", "C"]], "seed")
    assert [(d.item, d.competitive) for d in merged][0] == ("A", False)


def test_team_draft_a_limit_cutting_a_group_unscores_it():
    merged = team_draft([list("ABC"), list("DEF")], "seed", limit=3)
    assert [d.competitive for d in merged] == [True, True, False]
