"""The SQL experiments repository (``core.experiments.definition``; tables ``experiments``,
``experiment_layers``, ``experiment_exposures``)."""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa

from lastmile.adapters.db import tables_experiments as t
from lastmile.adapters.db.repositories import _Repo
from lastmile.adapters.db.writes import insert_or_skip
from lastmile.app.ports_experiments import Exposure
from lastmile.core.experiments.assignment import MarketSlot, Span, Variant
from lastmile.core.experiments.definition import Experiment, Layer, State, params_from

Row = dict[str, Any]


def experiment_row(e: Experiment) -> Row:
    return {"id": e.id, "name": e.name, "lever": e.lever, "design": e.design,
            "unit_kind": e.unit_kind,
            "variants": [{"name": v.name, "weight": v.weight, "params": v.config}
                         for v in e.variants],
            "salt": e.salt, "layer": e.layer, "span_low": e.span.low, "span_high": e.span.high,
            "state": e.state.value, "window_s": e.window_s, "burn_in_s": e.burn_in_s,
            "wash_out_s": e.wash_out_s,
            "allocation": [{"market": s.market, "variant": s.variant, "stratum": s.stratum}
                           for s in e.allocation],
            "description": e.description, "created_at": e.created_at,
            "started_at": e.started_at, "stopped_at": e.stopped_at}


def experiment_from(row: Row) -> Experiment:
    return Experiment(
        id=row["id"], name=row["name"], lever=row["lever"], design=row["design"],
        unit_kind=row["unit_kind"],
        variants=tuple(Variant(name=v["name"], weight=float(v["weight"]),
                               params=params_from(v["params"])) for v in row["variants"]),
        salt=row["salt"], layer=row["layer"],
        span=Span(low=float(row["span_low"]), high=float(row["span_high"])),
        state=State(row["state"]), window_s=float(row["window_s"]),
        burn_in_s=float(row["burn_in_s"]), wash_out_s=float(row["wash_out_s"]),
        allocation=tuple(MarketSlot(market=s["market"], variant=s["variant"],
                                    stratum=s["stratum"]) for s in row["allocation"]),
        description=row["description"], created_at=float(row["created_at"]),
        started_at=row["started_at"], stopped_at=row["stopped_at"])


def exposure_from(row: Row) -> Exposure:
    return Exposure(experiment_id=row["experiment_id"], unit=row["unit"],
                    variant=row["variant"], counts=bool(row["counts"]),
                    first_at=float(row["first_at"]), region_id=row["region_id"])


class SqlExperiments(_Repo):
    def add(self, experiment: Experiment) -> bool:
        return insert_or_skip(self.conn, t.experiments, experiment_row(experiment))

    def get(self, experiment_id: str) -> Experiment | None:
        row = self._by(t.experiments, id=experiment_id)
        return None if row is None else experiment_from(row)

    def by_name(self, name: str) -> Experiment | None:
        row = self._by(t.experiments, name=name)
        return None if row is None else experiment_from(row)

    def list(self, *, state: State | None = None, layer: str | None = None,
             limit: int = 100) -> list[Experiment]:
        e = t.experiments
        stmt = sa.select(e).order_by(e.c.created_at, e.c.id).limit(limit)
        if state is not None:
            stmt = stmt.where(e.c.state == state.value)
        if layer is not None:
            stmt = stmt.where(e.c.layer == layer)
        return [experiment_from(dict(r)) for r in self.conn.execute(stmt).mappings()]

    def move(self, experiment: Experiment, *, expected: State) -> bool:
        e = t.experiments
        done = self.conn.execute(
            e.update().where(e.c.id == experiment.id, e.c.state == expected.value).values(
                state=experiment.state.value, started_at=experiment.started_at,
                stopped_at=experiment.stopped_at))
        return done.rowcount == 1

    def layer(self, name: str) -> Layer | None:
        row = self._by(t.experiment_layers, name=name)
        return None if row is None else Layer(name=row["name"], holdout=float(row["holdout"]))

    def add_layer(self, layer: Layer, *, at: float) -> bool:
        return insert_or_skip(self.conn, t.experiment_layers,
                              {"name": layer.name, "holdout": layer.holdout, "created_at": at})

    def expose(self, exposure: Exposure) -> bool:
        return insert_or_skip(self.conn, t.experiment_exposures, {
            "experiment_id": exposure.experiment_id, "unit": exposure.unit,
            "variant": exposure.variant, "counts": exposure.counts,
            "first_at": exposure.first_at, "region_id": exposure.region_id})

    def exposures(self, experiment_id: str, *, limit: int) -> builtins.list[Exposure]:
        x = t.experiment_exposures
        stmt = (sa.select(x).where(x.c.experiment_id == experiment_id)
                .order_by(x.c.first_at, x.c.unit).limit(limit))
        return [exposure_from(dict(r)) for r in self.conn.execute(stmt).mappings()]
