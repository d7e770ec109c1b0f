"""``lastmile eta train|evaluate``: the learned ETA model from MDRP replays, and how it does
against the heuristic on other replays (docs/eta.md "Models")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

_MDRP = typer.Option("--mdrp", help="MDRP instance folders, or folders holding them "
                     "(repeat the option)")
_CACHE = typer.Option("--cache", help="Keep replayed instances here (a folder outside the "
                      "repo) to skip replaying them next time")
_POLICY = typer.Option("--policy", help="Dispatch policy the replays run (greedy, optimised)")


def _tables(mdrp: list[Path], policy: str, cache: Path | None) -> list[Any]:
    from lastmile.sim.mdrp.eta_rows import instance_dirs, replay_table

    return [replay_table(d, policy=policy, cache_dir=cache) for d in instance_dirs(mdrp)]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=2)


def train(
    mdrp: Annotated[list[Path], _MDRP],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write (replaced)")],
    version: Annotated[int, typer.Option("--version", min=1, help="Model version number")] = 1,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Boosting rounds")] = 50,
    policy: Annotated[str, _POLICY] = "optimised",
    cache: Annotated[Path | None, _CACHE] = None,
) -> None:
    """Train the two-stage LightGBM quantile model on the given MDRP replays (every fifth
    instance calibrates the intervals; with 2-4 instances the last one, with one instance
    its last fifth of orders) and write
    it as a versioned model folder. Prints one JSON line: the model and its training data."""
    from dataclasses import replace

    from lastmile.adapters.clock import SystemClock
    from lastmile.adapters.eta_model_files import save_model
    from lastmile.core.errors import DomainError
    from lastmile.core.eta.quantile_gbm import train_two_stage
    from lastmile.core.eta.table import concat

    try:
        tables = [t for t in _tables(mdrp, policy, cache) if len(t)]
    except DomainError as exc:
        raise _fail(exc) from exc
    if len(tables) >= 5:
        fit = concat([t for i, t in enumerate(tables) if i % 5 != 4])
        cal = concat([t for i, t in enumerate(tables) if i % 5 == 4])
    elif len(tables) >= 2:
        fit, cal = concat(tables[:-1]), tables[-1]
    elif tables:
        n = len(tables[0])
        fit, cal = tables[0].take(slice(0, n * 4 // 5)), tables[0].take(slice(n * 4 // 5, n))
    else:
        raise _fail(ValueError("the instances have no delivered order to learn from"))
    if len(fit) < 20 or len(cal) < 5:
        raise _fail(ValueError(f"too few orders to train (fit {len(fit)}, calibrate {len(cal)})"))
    model = train_two_stage(fit, cal, rounds=rounds)
    sources = sorted({str(s) for t in tables for s in t.source[:1]})
    meta = {"version": version, "name": f"lightgbm-{version}",
            "trained_at_utc": datetime.fromtimestamp(SystemClock().now(), UTC).isoformat(
                timespec="seconds"),
            "trained_on": {"kind": "mdrp-replay", "policy": policy, "instances": sources,
                           "fit_orders": len(fit), "calibration_orders": len(cal),
                           "rounds": rounds}}
    model = replace(model, name=f"lightgbm-{version}", meta=meta)
    save_model(model, out)
    typer.echo(json.dumps({"model": str(out), "name": model.name, "version": version,
                           "orders": len(fit) + len(cal), "instances": len(sources)}))


def evaluate(
    model: Annotated[Path, typer.Option("--model", help="Model folder (lastmile eta train)")],
    mdrp: Annotated[list[Path], _MDRP],
    policy: Annotated[str, _POLICY] = "optimised",
    cache: Annotated[Path | None, _CACHE] = None,
) -> None:
    """Replay the instances and score the model and the heuristic on every delivered order.
    Prints, last, one JSON object {"heuristic": {"mae_s", "coverage80", ...}, "model": {...},
    "orders": N} (couriers-short figures under "short")."""
    from lastmile.adapters.eta_model_files import load_model
    from lastmile.core.errors import DomainError
    from lastmile.core.eta.engine import HeuristicModel
    from lastmile.core.eta.scoring import metrics, short_supply
    from lastmile.core.eta.table import concat

    try:
        learned = load_model(model)
        table = concat(_tables(mdrp, policy, cache))
    except DomainError as exc:
        raise _fail(exc) from exc
    short = short_supply(table.matrix)
    result: dict[str, Any] = {}
    for name, (point, p10, p90) in (
            ("heuristic", HeuristicModel().predict_batch(table.matrix)),
            ("model", learned.checkout(table.matrix, table.merchant))):
        result[name] = {**metrics(point, p10, p90, table.total_s),
                        "short": metrics(point[short], p10[short], p90[short],
                                         table.total_s[short])}
        result[name].pop("orders", None)
    result["model"]["name"] = learned.name
    result["orders"] = len(table)
    typer.echo(json.dumps(result))
