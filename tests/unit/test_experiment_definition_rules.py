"""Rules of an experiment's definition and of who it serves (core.experiments.definition)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.experiments.assignment import Span, Variant, bucket
from lastmile.core.experiments.definition import (
    Experiment,
    State,
    assignment,
    dispatch_with,
    pricing_with,
)
from lastmile.core.pricing import PricingPolicy

ARMS = (Variant(name="control"), Variant(name="treatment", params=(("late_weight", 0.5),)))


def an_experiment(**overrides: object) -> Experiment:
    base = Experiment(id="exp_1", name="late", lever="dispatch", design="switchback",
                      unit_kind="region", variants=ARMS, salt="s", layer="_late",
                      span=Span(low=0.0, high=1.0), window_s=600.0)
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_only_a_running_experiment_serves_and_only_between_its_start_and_stop():
    draft = an_experiment()
    assert assignment(draft, "reg_1", 100.0) is None
    running = draft.moved(State.RUNNING, at=100.0)
    assert assignment(running, "reg_1", 99.0) is None
    got = assignment(running, "reg_1", 100.0 + 650.0)
    assert got is not None and got.unit == "reg_1@1"
    stopped = running.moved(State.STOPPED, at=1_000.0)
    assert assignment(stopped, "reg_1", 900.0) is None


def test_states_move_draft_running_stopped_and_never_back():
    running = an_experiment().moved(State.RUNNING, at=1.0)
    assert running.started_at == 1.0
    with pytest.raises(Conflict):
        running.moved(State.RUNNING, at=2.0)
    stopped = running.moved(State.STOPPED, at=3.0)
    with pytest.raises(Conflict):
        stopped.moved(State.RUNNING, at=4.0)
    assert an_experiment().moved(State.STOPPED, at=5.0).stopped_at == 5.0


def test_a_unit_outside_the_range_or_in_the_holdout_is_not_served():
    u = bucket("layer:_late", "reg_1")
    running = an_experiment(state=State.RUNNING, started_at=0.0)
    assert assignment(running, "reg_1", 1.0, holdout=min(u + 0.01, 0.99)) is None
    outside = replace(running, span=Span(low=u + 1e-9, high=1.0)) if u < 0.99 else replace(
        running, span=Span(low=0.0, high=u - 1e-9))
    assert assignment(outside, "reg_1", 1.0) is None
    assert assignment(running, "reg_1", 1.0) is not None


def test_definitions_name_the_field_they_break():
    with pytest.raises(InvalidInput) as eta:
        an_experiment(lever="eta", design="ab", unit_kind="consumer",
                      variants=(Variant(name="control"),
                                Variant(name="t", params=(("model", "bigger"),))))
    assert eta.value.field == "variants[1].params"
    with pytest.raises(InvalidInput) as burn:
        an_experiment(burn_in_s=400.0, wash_out_s=300.0)
    assert burn.value.field == "burn_in_s"
    with pytest.raises(InvalidInput) as weight:
        Variant(name="t", weight=0.0)
    assert weight.value.field == "variants.weight"
    with pytest.raises(InvalidInput) as params:
        an_experiment(variants=(Variant(name="control"),
                                Variant(name="t", params=(("late_weight", float("nan")),))))
    assert params.value.field == "variants[1].params.late_weight"


def test_a_variants_params_override_the_policy_and_nothing_else():
    policy = dispatch_with(DispatchPolicy(), {"late_weight": 0.5, "kind": "greedy"})
    assert policy.late_weight == 0.5 and policy.kind.value == "greedy"
    assert replace(policy, late_weight=DispatchPolicy().late_weight,
                   kind=DispatchPolicy().kind) == DispatchPolicy()
    assert dispatch_with(DispatchPolicy(), {}) == DispatchPolicy()
    fees = pricing_with(PricingPolicy(), {"base_delivery_fee_minor": 1})
    assert fees == replace(PricingPolicy(), base_delivery_fee_minor=1)
