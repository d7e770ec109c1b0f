"""The live path: offers carry what they showed, the dispatcher learns from their outcomes,
and ``lastmile simulate --compare-obedient`` measures it against instant obedience."""

from __future__ import annotations

import json

import pytest

from lastmile.app.acceptance import AcceptanceLearner, load_history, offer_trails
from lastmile.core.dispatch.acceptance import AcceptanceModel, OfferFeatures
from lastmile.sim.live_compare import VARIANTS, compare_live, variant
from lastmile.sim.simulate_command import run_scenario
from lastmile.sim.world import WorldConfig


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """A short live-path run kept on disk: couriers with propensities, learning on."""
    data = tmp_path_factory.mktemp("live")
    v = variant("live_learning", dispatch_every_s=30.0, acceptance_weight=1.0)
    result = run_scenario("tiny", seed=3, hours=0.5, data_dir=data, config=v.config,
                          policy=v.policy, acceptance=v.acceptance)
    return data, result, v.acceptance


def _services(data, at: float):
    from lastmile.adapters.clock import ManualClock
    from lastmile.bootstrap import build
    from lastmile.settings import Settings

    return build(Settings(data_dir=data), clock=ManualClock(start=at))


def test_offers_record_the_features_they_showed_and_how_they_ended(live_run):
    data, result, _ = live_run
    container = _services(data, result.log.end)
    try:
        history = load_history(container.services, "reg_pa", since=0.0)
        trails = offer_trails(container.services, "reg_pa", since=0.0)
    finally:
        container.close()
    assert history and len(trails) == result.kpis["offers_made"]
    assert all(isinstance(o.features, OfferFeatures) and o.features.pickup_m >= 0
               for o in history)
    closed = [t for t in trails if t.closed_as in ("accepted", "declined", "expired")]
    assert len(history) == len(closed)
    assert sum(o.accepted for o in history) == sum(t.closed_as == "accepted" for t in closed)


def test_the_learner_fits_per_region_and_refits_only_when_stale(live_run):
    data, result, _ = live_run
    container = _services(data, result.log.end)
    try:
        svc = container.services
        learner = AcceptanceLearner(refit_every_s=600.0)
        first = learner.model(svc, "reg_pa")
        assert first.n_offers > 0 and first != AcceptanceModel.prior()
        assert learner.model(svc, "reg_pa") is first
        assert learner.model(svc, "reg_nowhere") == AcceptanceModel.prior()
        pricing = learner.pricing(svc, "reg_pa")
        assert pricing.reoffer_delay_s == svc.offer_ttl_s + learner.round_s
        svc.clock.advance(601.0)  # type: ignore[attr-defined]
        assert learner.model(svc, "reg_pa") is not first
    finally:
        container.close()


def test_the_live_path_kpis_are_reported(live_run):
    _, result, learner = live_run
    k = result.kpis
    assert k["offers_made"] > 0 and 0 < k["acceptance_rate"] < 1
    assert 0 <= k["expired_share"] < 1 and k["offers_per_order"] >= 1
    assert k["time_to_assignment_min"]["p50"] <= k["time_to_assignment_min"]["p90"]
    assert learner is not None and learner._cache  # the dispatcher fitted during the run


def test_propensities_off_keep_todays_world():
    """The default world is today's (accept_p, respond_s): the golden runs do not move."""
    assert WorldConfig().propensities is False


def test_compare_runs_the_same_city_three_ways_and_the_obedient_one_answers_at_once():
    results = compare_live("tiny", seed=3, hours=0.3)
    assert tuple(results) == VARIANTS
    obedient, live = results["obedient"], results["live"]
    assert obedient["acceptance_rate"] >= live["acceptance_rate"]
    assert obedient["offers_per_order"] <= live["offers_per_order"]
    assert all(r["orders_placed"] > 0 for r in results.values())


def test_simulate_compare_obedient_prints_and_writes_the_comparison(tmp_path):
    from typer.testing import CliRunner

    from lastmile.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["simulate", "--scenario", "tiny", "--hours", "0.2",
                                      "--seed", "5", "--compare-obedient", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "compare.json").read_text())
    assert saved["seed"] == 5 and set(saved["runs"]) == set(VARIANTS)
    assert "acceptance_rate" in saved["runs"]["live"] and "live_learning" in result.output
