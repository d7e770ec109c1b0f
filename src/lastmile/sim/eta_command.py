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
_HISTORY = typer.Option("--history", help="Delivery history exports (`lastmile eta export`, "
                        "Parquet), one table per file: the platform's own orders (repeat the "
                        "option)")


def _tables(mdrp: list[Path], policy: str, cache: Path | None,
            history: list[Path] | None = None) -> list[Any]:
    """One table per MDRP instance, then one per history file (its complete deliveries)."""
    from lastmile.sim.mdrp.eta_rows import instance_dirs, replay_table

    tables = ([replay_table(d, policy=policy, cache_dir=cache) for d in instance_dirs(mdrp)]
              if mdrp else [])
    return tables + [history_table(p) for p in history or []]


def history_table(path: Path) -> Any:
    """The complete deliveries of a history export as an ``EtaTable`` (source: the file's
    name); InvalidInput naming the file when it is missing or not such an export."""
    from lastmile.adapters.eta_parquet import read_history
    from lastmile.core.errors import InvalidInput
    from lastmile.core.eta.table import table_from_rows

    try:
        records = read_history(path)
    except (OSError, ValueError) as exc:
        raise InvalidInput("invalid_history", f"cannot read ETA history {path}: {exc}",
                           field="history") from exc
    done = [(r.features, r.finish.outcome) for r in records
            if r.finish is not None and r.finish.outcome is not None]
    return table_from_rows([f for f, _ in done], [o for _, o in done], source=path.stem)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=2)


def train(
    out: Annotated[Path, typer.Option("--out", help="Model folder to write (replaced)")],
    mdrp: Annotated[list[Path] | None, _MDRP] = None,
    history: Annotated[list[Path] | None, _HISTORY] = None,
    version: Annotated[int, typer.Option("--version", min=1, help="Model version number")] = 1,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Boosting rounds")] = 50,
    policy: Annotated[str, _POLICY] = "optimised",
    cache: Annotated[Path | None, _CACHE] = None,
    base: Annotated[str, typer.Option(
        "--base", help="what the boosters learn the excess over: heuristic (the no-queue "
        "point) or queue (the greedy queue's pickup plus the trip; needs the queue features, "
        "which MDRP replays have and the live history does not)")] = "heuristic",
) -> None:
    """Train the two-stage LightGBM quantile model on MDRP replays and/or the platform's
    delivery history exports (each instance or file is one table; every fifth table
    calibrates the intervals; with 2-4 tables the last one, with one table its last fifth
    of orders) and write it as a versioned model folder. Prints one JSON line: the model
    and its training data."""
    from dataclasses import replace

    from lastmile.adapters.clock import SystemClock
    from lastmile.adapters.eta_model_files import save_model
    from lastmile.core.errors import DomainError
    from lastmile.core.eta.quantile_gbm import BASES, train_two_stage
    from lastmile.core.eta.table import concat

    if not mdrp and not history:
        raise _fail(ValueError("give --mdrp and/or --history: what to train on"))
    if base not in BASES:
        raise _fail(ValueError(f"--base must be one of {list(BASES)} (got {base!r})"))
    try:
        tables = [t for t in _tables(mdrp or [], policy, cache, history) if len(t)]
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
    model = train_two_stage(fit, cal, rounds=rounds, base=base)
    sources = sorted({str(s) for t in tables for s in t.source[:1]})
    meta = {"version": version, "name": f"lightgbm-{version}",
            "trained_at_utc": datetime.fromtimestamp(SystemClock().now(), UTC).isoformat(
                timespec="seconds"),
            "trained_on": {"kind": "+".join(k for k, given in (("mdrp-replay", mdrp),
                                                                ("history", history)) if given),
                           "policy": policy, "instances": sources,
                           "fit_orders": len(fit), "calibration_orders": len(cal),
                           "rounds": rounds, "base": base}}
    model = replace(model, name=f"lightgbm-{version}", meta=meta)
    save_model(model, out)
    typer.echo(json.dumps({"model": str(out), "name": model.name, "version": version,
                           "orders": len(fit) + len(cal), "instances": len(sources)}))


def evaluate(
    model: Annotated[Path, typer.Option("--model", help="Model folder (lastmile eta train)")],
    mdrp: Annotated[list[Path] | None, _MDRP] = None,
    history: Annotated[list[Path] | None, _HISTORY] = None,
    policy: Annotated[str, _POLICY] = "optimised",
    cache: Annotated[Path | None, _CACHE] = None,
) -> None:
    """Replay the instances (and read the history exports) and score the model and the
    heuristic on every delivered order.
    Prints, last, one JSON object {"heuristic": {"mae_s", "coverage80", ...}, "model": {...},
    "orders": N} (couriers-short figures under "short")."""
    from lastmile.adapters.eta_model_files import load_model
    from lastmile.core.errors import DomainError
    from lastmile.core.eta.engine import HeuristicModel
    from lastmile.core.eta.scoring import metrics, short_supply
    from lastmile.core.eta.table import concat

    if not mdrp and not history:
        raise _fail(ValueError("give --mdrp and/or --history: what to evaluate on"))
    try:
        learned = load_model(model)
        table = concat(_tables(mdrp or [], policy, cache, history))
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
