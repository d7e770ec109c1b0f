"""ETA serving (app.eta): the incumbent model file shapes the quote, a shadow is logged
beside it at checkout, and promotion reads both models' live errors back."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fakes import in_memory
from journeys import deliver_after
from lastmile.adapters.eta_models import FileModelRegistry, write_heuristic
from lastmile.app import eta, queries
from lastmile.app.ordering import LineRequest, OrderRequest, get_quote, place_order
from lastmile.core.eta.engine import HeuristicParams
from lastmile.core.geo import Point

DROP = Point(lat=37.445, lng=-122.15)


def _models(tmp_path: Path, **roles: str) -> FileModelRegistry:
    write_heuristic(tmp_path / "wide.json", HeuristicParams(
        name="heuristic-wide", pickup_leg_s=1_200, p10_ratio=0.5, p90_ratio=2.0))
    (tmp_path / "registry.json").write_text(json.dumps(roles))
    return FileModelRegistry(tmp_path)


def _request(p, consumer=0):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    return OrderRequest(consumer_id=p.seed.consumer_ids[consumer], merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=2),), dropoff=DROP)


@in_memory
def test_without_model_files_the_heuristic_serves_the_quote(platform):
    q = get_quote(platform.services, _request(platform))
    assert q.estimate is not None and q.estimate.model.startswith("heuristic-")
    now = platform.clock.now()
    assert q.eta.low_at == now + q.estimate.p10_s and q.eta.high_at == now + q.estimate.p90_s
    assert q.estimate.p10_s <= q.estimate.point_s <= q.estimate.p90_s


@in_memory
def test_an_incumbent_model_file_serves_the_window_and_the_prices_stay(platform, tmp_path):
    plain = get_quote(platform.services, _request(platform))
    svc = replace(platform.services, eta_models=_models(tmp_path, incumbent="wide.json"))
    served = get_quote(svc, _request(platform))
    assert served.estimate is not None and served.estimate.model == "heuristic-wide"
    assert served.prices == plain.prices
    assert served.eta.high_at - served.eta.low_at > plain.eta.high_at - plain.eta.low_at


@in_memory
def test_a_shadow_is_logged_beside_the_served_estimate_never_shown(platform, tmp_path):
    svc = replace(platform.services, eta_models=_models(tmp_path, shadow="wide.json"))
    placed = place_order(svc, _request(platform), idempotency_key="k1").order
    with svc.uow(read_only=True) as uow:
        (event,) = uow.events.of_types(placed.region_id, [eta.SHADOW_EVENT], since=0)
    assert event.subject_id == placed.id
    assert event.data["shadow"]["model"] == "heuristic-wide"
    assert event.data["served"]["model"] != "heuristic-wide"
    assert placed.eta.expected_at - placed.placed_at == pytest.approx(
        event.data["served"]["point_s"])


@in_memory
def test_no_shadow_no_event(platform, tmp_path):
    svc = replace(platform.services, eta_models=_models(tmp_path))
    placed = place_order(svc, _request(platform), idempotency_key="k1").order
    with svc.uow(read_only=True) as uow:
        assert uow.events.of_types(placed.region_id, [eta.SHADOW_EVENT], since=0) == []


@in_memory
def test_live_errors_compare_both_models_on_the_delivered_orders(platform, tmp_path):
    registry = _models(tmp_path, shadow="wide.json")
    svc = replace(platform.services, eta_models=registry)
    start = platform.clock.now()
    order = place_order(svc, _request(platform), idempotency_key="k1").order
    # Delivered well after both points: the shadow (a 20 min leg) is the closer of the two.
    deliver_after(platform, order, platform.seed.courier_ids[0], ride_s=3_600, services=svc)
    errors = eta.live_errors(svc, since=start)
    assert errors is not None
    served, shadow = errors
    assert served.orders == shadow.orders == 1
    assert shadow.model == "heuristic-wide" and served.model != shadow.model
    assert shadow.mae_s < served.mae_s
    decision = eta.decide_promotion(served, shadow, min_orders=1)
    assert decision.promote and "beats" in decision.reason


def test_eta_promote_promotes_a_shadow_that_beats_the_incumbent_live(sqlite_platform, tmp_path):
    from typer.testing import CliRunner

    from lastmile.cli import app

    p = sqlite_platform
    models = tmp_path / "models"
    models.mkdir()
    registry = _models(models, shadow="wide.json")
    svc = replace(p.services, eta_models=registry)
    order = place_order(svc, _request(p), idempotency_key="k1").order
    args = ["eta", "promote", "--models", str(models), "--hours", "1000000",
            "--data-dir", str(tmp_path), "--min-orders", "1"]
    waiting = CliRunner().invoke(app, args)  # nothing delivered yet: no decision, exit 1
    assert waiting.exit_code == 1 and json.loads(waiting.stdout)["promoted"] is None
    deliver_after(p, order, p.seed.courier_ids[0], ride_s=3_600, services=svc)
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.stdout
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["promoted"] == "wide.json" and out["shadow"]["model"] == "heuristic-wide"
    assert out["shadow"]["mae_s"] < out["incumbent"]["mae_s"]
    incumbent = FileModelRegistry(models).incumbent()
    assert incumbent is not None and incumbent.name == "heuristic-wide"


def test_eta_promote_with_no_shadow_says_so_and_exits_1(sqlite_platform, tmp_path):
    from typer.testing import CliRunner

    from lastmile.cli import app

    models = tmp_path / "models"
    models.mkdir()
    _models(models, incumbent="wide.json")
    result = CliRunner().invoke(app, ["eta", "promote", "--models", str(models), "--force",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["promoted"] is None and "no shadow model" in out["reason"]


@in_memory
def test_a_served_model_sees_the_features_the_history_stores_for_the_order(platform, tmp_path):
    from lastmile.app import eta_history

    svc = replace(platform.services, eta_models=_models(tmp_path, incumbent="wide.json",
                                                         shadow="wide.json"))
    first = place_order(svc, _request(platform), idempotency_key="k0").order
    platform.clock.advance(90)
    q = get_quote(svc, _request(platform, consumer=1))
    assert q.features is not None
    with svc.uow(read_only=True) as uow:
        region = uow.regions.get(first.region_id)
        merchant = uow.merchants.get(first.merchant_id)
        assert region is not None and merchant is not None
        fresh = eta_history.features_at(
            uow, svc, merchant_id=merchant.id, region=region, pickup=merchant.location,
            dropoff=DROP, now=platform.clock.now(), default_prep_s=merchant.prep_time_s,
            idle_couriers=q.features.idle_couriers[-1], items=q.features.items,
            subtotal_minor=q.features.subtotal_minor)
    assert q.features == fresh
    assert q.features.orders_per_min[-1] > 0  # the first order is counted, as the history does
    placed = place_order(svc, _request(platform, consumer=1), idempotency_key="k1").order
    with svc.uow(read_only=True) as uow:
        (record,) = [r for r in uow.eta_history.records(finished_only=False)
                     if r.order_id == placed.id]
        events = uow.events.of_types(placed.region_id, [eta.SHADOW_EVENT], since=0)
    assert record.features == q.features
    shadow = next(e for e in events if e.subject_id == placed.id)
    assert shadow.data["shadow"]["point_s"] == pytest.approx(q.estimate.point_s)


@in_memory
def test_a_lightgbm_model_folder_serves_as_the_incumbent(platform, tmp_path):
    from tests.unit.eta.builders import a_table

    from lastmile.adapters.eta_model_files import save_model
    from lastmile.core.eta.quantile_gbm import train_two_stage

    model = replace(train_two_stage(a_table(600, seed=1), a_table(200, seed=2), rounds=10),
                    name="lightgbm-9")
    save_model(model, tmp_path / "lightgbm-9")
    (tmp_path / "registry.json").write_text(json.dumps({"incumbent": "lightgbm-9"}))
    svc = replace(platform.services, eta_models=FileModelRegistry(tmp_path))
    q = get_quote(svc, _request(platform))
    assert q.estimate is not None and q.estimate.model == "lightgbm-9"
    (expected,) = model.estimates([q.features])
    assert q.estimate.point_s == pytest.approx(expected.point_s)
    now = platform.clock.now()
    assert q.eta.low_at == pytest.approx(now + q.estimate.p10_s)
    assert q.eta.high_at == pytest.approx(now + q.estimate.p90_s)
