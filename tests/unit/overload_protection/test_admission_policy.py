"""The admission rule (core.overload): browse is shed first, then normal; critical until the
hard ceiling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastmile.core.overload import (
    PRIORITIES,
    AdmissionPolicy,
    Priority,
    admit,
    shed_classes,
)

C, N, B = Priority.CRITICAL, Priority.NORMAL, Priority.BROWSE
POLICY = AdmissionPolicy(browse_max=4, normal_max=8, critical_max=12)


def counts(critical: int = 0, normal: int = 0, browse: int = 0) -> dict[Priority, int]:
    return {C: critical, N: normal, B: browse}


def test_everything_is_admitted_below_the_browse_ceiling():
    assert all(admit(POLICY, counts(critical=1, normal=1, browse=1), p).admitted
               for p in PRIORITIES)


def test_browse_is_shed_first_when_the_process_reaches_its_browse_ceiling():
    busy = counts(critical=3, browse=1)  # 4 in flight, whatever their classes
    assert not admit(POLICY, busy, B).admitted
    assert admit(POLICY, busy, N).admitted and admit(POLICY, busy, C).admitted
    assert shed_classes(POLICY, busy) == (B,)


def test_normal_is_shed_next_and_critical_runs_until_the_hard_ceiling():
    assert shed_classes(POLICY, counts(critical=8)) == (N, B)
    assert admit(POLICY, counts(critical=11), C).admitted
    refused = admit(POLICY, counts(critical=12), C)
    assert not refused.admitted and refused.ceiling == 12 and refused.in_flight == 12
    assert shed_classes(POLICY, counts(critical=12)) == (C, N, B)


def test_a_shed_request_is_told_to_wait_longer_the_less_important_it_is():
    full = counts(critical=12)
    waits = [admit(POLICY, full, p).retry_after_s for p in PRIORITIES]
    assert waits == [1, 2, 5] and admit(POLICY, counts(), B).retry_after_s == 0


def test_negative_counters_do_not_open_the_gate_wider():
    assert not admit(POLICY, counts(critical=-100, browse=4), B).admitted


@pytest.mark.parametrize("ceilings", [(0, 1, 2), (5, 4, 10), (1, 8, 7)])
def test_unordered_or_empty_ceilings_are_refused(ceilings):
    b, n, c = ceilings
    with pytest.raises(ValueError, match="browse_max <= normal_max <= critical_max"):
        AdmissionPolicy(browse_max=b, normal_max=n, critical_max=c)


policies = st.tuples(st.integers(1, 50), st.integers(0, 50), st.integers(0, 50)).map(
    lambda t: AdmissionPolicy(browse_max=t[0], normal_max=t[0] + t[1],
                              critical_max=t[0] + t[1] + t[2]))
in_flight = st.fixed_dictionaries({p: st.integers(0, 200) for p in PRIORITIES})


@given(policies, in_flight)
def test_browse_is_never_admitted_while_a_higher_class_is_shed(policy, flying):
    if not admit(policy, flying, C).admitted or not admit(policy, flying, N).admitted:
        assert not admit(policy, flying, B).admitted


@given(policies, in_flight)
def test_an_admitted_class_means_every_more_important_class_is_admitted(policy, flying):
    for i, p in enumerate(PRIORITIES):
        if admit(policy, flying, p).admitted:
            assert all(admit(policy, flying, q).admitted for q in PRIORITIES[:i])


@given(policies, in_flight, st.sampled_from(PRIORITIES))
def test_one_more_request_in_flight_never_turns_a_refusal_into_an_admission(policy, flying, p):
    busier = {**flying, C: flying[C] + 1}
    if not admit(policy, flying, p).admitted:
        assert not admit(policy, busier, p).admitted


@given(policies, in_flight)
def test_critical_is_admitted_whenever_the_total_is_below_the_hard_ceiling(policy, flying):
    assert admit(policy, flying, C).admitted == (sum(flying.values()) < policy.critical_max)
