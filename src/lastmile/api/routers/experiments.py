"""Experiments for ops: define, list, start and stop them, read their observations and
their analysis (docs/experiments.md)."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from lastmile.api.deps import Ops, ServicesDep
from lastmile.api.links import feeds
from lastmile.api.schemas import Id, Line, Strict, iso
from lastmile.app import experiments, experiments_data
from lastmile.app.experiments import NewExperiment
from lastmile.core.experiments.assignment import Variant
from lastmile.core.experiments.definition import Experiment, State, params_from
from lastmile.core.experiments.observations import Observation

router = APIRouter(prefix="/v1/ops/experiments", tags=["experiments"])

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,62}$",
                            description="lowercase letters, digits, _ and -")]
LayerName = Annotated[str, Field(pattern=r"^[a-z0-9_][a-z0-9_\-]{0,63}$")]
ParamKey = Annotated[str, Field(min_length=1, max_length=64)]
ParamValue = StrictBool | StrictInt | Annotated[float, Field(allow_inf_nan=False)] | Annotated[
    StrictStr, Field(max_length=100)]
Metric = Literal["click_to_door_min", "delivery_fee_minor", "delivered"]
Finite = Annotated[StrictFloat | StrictInt, Field(allow_inf_nan=False)]


class VariantIn(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
    weight: float = Field(default=1.0, gt=0, le=1_000_000, allow_inf_nan=False)
    params: dict[ParamKey, ParamValue] = Field(
        default_factory=dict, max_length=20,
        description="the lever's overrides, e.g. {\"late_weight\": 0.5}")


class ExperimentIn(Strict):
    name: Name
    lever: Literal["dispatch", "fees", "eta", "other"]
    design: Literal["ab", "courier_ab", "switchback", "market_ab", "interleaving"]
    unit: Literal["order", "consumer", "courier", "region", "market"] | None = None
    variants: list[VariantIn] = Field(min_length=2, max_length=10)
    layer: LayerName | None = None
    holdout: float | None = Field(default=None, ge=0, lt=1)
    share: float = Field(default=1.0, gt=0, le=1)
    window_s: float = Field(default=3_600.0, gt=0, le=7 * 86_400)
    burn_in_s: float = Field(default=0.0, ge=0, le=7 * 86_400)
    wash_out_s: float = Field(default=0.0, ge=0, le=7 * 86_400)
    strata_metrics: dict[Id, list[Finite]] | None = Field(
        default=None, max_length=2_000,
        description="market_ab: per market (region id) the metrics to stratify on")
    salt: Annotated[Line, Field(min_length=1, max_length=100)] | None = None
    description: Annotated[Line, Field(max_length=500)] = ""


def experiment_out(e: Experiment) -> dict[str, Any]:
    return {"id": e.id, "name": e.name, "lever": e.lever, "design": e.design,
            "unit": e.unit_kind, "state": e.state.value,
            "variants": [{"name": v.name, "weight": v.weight, "params": v.config}
                         for v in e.variants],
            "layer": e.layer, "share": [e.span.low, e.span.high], "salt": e.salt,
            "window_s": e.window_s, "burn_in_s": e.burn_in_s, "wash_out_s": e.wash_out_s,
            "allocation": [{"market": s.market, "variant": s.variant, "stratum": s.stratum}
                           for s in e.allocation],
            "description": e.description, "created_at": iso(e.created_at),
            "started_at": iso(e.started_at), "stopped_at": iso(e.stopped_at)}


def observation_out(o: Observation) -> dict[str, Any]:
    return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (e.g. a relative effect on a zero
    control mean)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


@router.post("", status_code=201, responses=feeds(
    "experiment_id", "id", ("get", "/v1/ops/experiments/{experiment_id}"),
    ("post", "/v1/ops/experiments/{experiment_id}/start"),
    ("post", "/v1/ops/experiments/{experiment_id}/stop")))
def create_experiment(svc: ServicesDep, who: Ops, body: ExperimentIn) -> dict[str, Any]:
    """Define an experiment (a draft): its lever, design, arms with their overrides, layer
    share and, for a switchback, its windows; a market A/B's markets are allocated within
    strata of ``strata_metrics``."""
    spec = NewExperiment(
        name=body.name, lever=body.lever, design=body.design, unit=body.unit,
        variants=tuple(Variant(name=v.name, weight=v.weight, params=params_from(v.params))
                       for v in body.variants),
        layer=body.layer, holdout=body.holdout, share=body.share, window_s=body.window_s,
        burn_in_s=body.burn_in_s, wash_out_s=body.wash_out_s,
        strata_metrics=({k: [float(x) for x in v] for k, v in body.strata_metrics.items()}
                        if body.strata_metrics is not None else None),
        salt=body.salt, description=body.description)
    return experiment_out(experiments.create(svc, spec))


@router.get("")
def list_experiments(
    svc: ServicesDep, who: Ops,
    state: Annotated[State | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=experiments.MAX_LIST)] = 100,
) -> dict[str, Any]:
    """The acting tenant's experiments, oldest first."""
    return {"experiments": [experiment_out(e) for e in
                            experiments.list_experiments(svc, state=state, limit=limit)]}


@router.get("/{experiment_id}")
def get_experiment(svc: ServicesDep, who: Ops, experiment_id: Id) -> dict[str, Any]:
    """One experiment, by id or name."""
    return experiment_out(experiments.get(svc, experiment_id))


@router.post("/{experiment_id}/start")
def start_experiment(svc: ServicesDep, who: Ops, experiment_id: Id) -> dict[str, Any]:
    """draft -> running (409 from any other state): the levers serve it from now."""
    return experiment_out(experiments.start(svc, experiment_id))


@router.post("/{experiment_id}/stop")
def stop_experiment(svc: ServicesDep, who: Ops, experiment_id: Id) -> dict[str, Any]:
    """running or draft -> stopped (409 when stopped already)."""
    return experiment_out(experiments.stop(svc, experiment_id))


@router.get("/{experiment_id}/observations")
def experiment_observations(
    svc: ServicesDep, who: Ops, experiment_id: Id,
    metric: Annotated[Metric, Query()] = "click_to_door_min",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1_000,
) -> dict[str, Any]:
    """The analysis units' outcomes (exposures joined with their orders)."""
    obs = experiments_data.observations(svc, experiment_id, metric=metric)
    return {"experiment_id": experiment_id, "metric": metric, "count": len(obs),
            "observations": [finite(observation_out(o)) for o in obs[:limit]]}


@router.get("/{experiment_id}/analysis")
def analyze_experiment(
    svc: ServicesDep, who: Ops, experiment_id: Id,
    metric: Annotated[Metric, Query()] = "click_to_door_min",
    alpha: Annotated[float, Query(gt=0, le=0.5)] = 0.05,
) -> dict[str, Any]:
    """Every variant against control on ``metric`` (409 ``no_observations`` before any)."""
    result = experiments_data.analyze(svc, experiment_id, metric=metric, alpha=alpha)
    return {"experiment_id": experiment_id, "metric": metric,
            **finite(dataclasses.asdict(result))}
