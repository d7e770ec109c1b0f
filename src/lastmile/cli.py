"""The ``lastmile`` command line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lastmile.core.tenancy import DEFAULT_TENANT, Tenant
from lastmile.settings import Settings

if TYPE_CHECKING:  # for the annotation only: the commands import bootstrap lazily
    from lastmile.bootstrap import Container

app = typer.Typer(help="lastmile: an open-source three-sided delivery marketplace.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
keys_app = typer.Typer(help="API keys bound to a role and an id.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
dead_app = typer.Typer(
    help="Events a durable bus subscriber failed on too often (parked after its retries): "
    "list them and replay them to that subscriber.", no_args_is_help=True)
tenants_app = typer.Typer(
    help="Tenants (L0:L1) of this deployment: businesses, and test tenants for end-to-end "
    "checks in production.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(dead_app, name="deadletters")
eta_app = typer.Typer(
    help="Probabilistic ETAs (docs/eta.md): export the delivery history, train and evaluate "
    "models, the served incumbent, a shadow beside it, promotion.",
    no_args_is_help=True)
app.add_typer(eta_app, name="eta")
console = Console()

DataDir = Annotated[Path | None, typer.Option(
    help="Folder for the SQLite file (env LASTMILE_DATA_DIR; default ./data).")]
DbUrl = Annotated[str | None, typer.Option(
    help="Database URL, e.g. postgresql://127.0.0.1/test (env LASTMILE_DATABASE_URL; "
    "default SQLite in the data dir).")]
TenantOpt = Annotated[str, typer.Option(
    help="The tenant, L0:L1 (e.g. doortest:probe); created if missing (env LASTMILE_TENANT).",
    envvar="LASTMILE_TENANT")]


def _tenant(value: str) -> str:
    """``value`` when it is a valid tenant, else exit 2 naming the rule."""
    from lastmile.core.errors import DomainError
    from lastmile.core.tenancy import parse_tenant

    try:
        return parse_tenant(value, field="--tenant")
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc


def _settings(data_dir: Path | None, database_url: str | None) -> Settings:
    base = Settings.from_env()  # every LASTMILE_* setting (the secret key among them)
    return replace(base, data_dir=data_dir or base.data_dir,
                   database_url=database_url or base.database_url)


def _container(data_dir: Path | None, database_url: str | None) -> Container:
    from lastmile.bootstrap import build

    return build(_settings(data_dir, database_url))


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Create or migrate the schema to the latest revision."""
    container = _container(data_dir, database_url)
    console.print(f"schema up to date at {container.settings.redacted_database_url()}")
    container.close()


@tenants_app.command("create")
def tenants_create(
    tenant: Annotated[str, typer.Argument(help="L0:L1, e.g. acme:eats or doortest:sandbox")],
    name: Annotated[str | None, typer.Option(help="display name (default: the id)")] = None,
    kind: Annotated[str | None, typer.Option(
        help="live or test (default: test for doortest:*, test:* and */sandbox|probe|test)")
    ] = None,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Create a tenant."""
    from lastmile.app.tenants import create_tenant
    from lastmile.core.errors import DomainError
    from lastmile.core.tenancy import TenantKind

    if kind is not None and kind not in {k.value for k in TenantKind}:
        console.print(f"[red]--kind must be live or test (got {kind!r})[/red]")
        raise typer.Exit(2)
    container = _container(data_dir, database_url)
    try:
        created = create_tenant(container.services, tenant, name=name,
                                kind=TenantKind(kind) if kind else None)
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    finally:
        container.close()
    console.print(f"tenant {created.id} ({created.kind.value}) created")


@tenants_app.command("list")
def tenants_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Every tenant of the deployment."""
    from lastmile.app.tenants import list_tenants

    container = _container(data_dir, database_url)
    try:
        tenants = list_tenants(container.services)
    finally:
        container.close()
    table = Table(title=f"{len(tenants)} tenant(s)")
    for col in ("tenant", "name", "kind", "config keys"):
        table.add_column(col)
    for t in tenants:
        table.add_row(t.id, t.name, t.kind.value, ", ".join(sorted(t.config)) or "-")
    console.print(table)


@tenants_app.command("show")
def tenants_show(
    tenant: Annotated[str, typer.Argument(help="L0:L1")],
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """A tenant's id, name, kind, version and config, as JSON."""
    from lastmile.app.tenants import get_tenant
    from lastmile.core.errors import DomainError

    container = _container(data_dir, database_url)
    try:
        found = get_tenant(container.services, _tenant(tenant))
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    finally:
        container.close()
    typer.echo(json.dumps(_tenant_doc(found), indent=2, sort_keys=True))


@tenants_app.command("configure")
def tenants_configure(
    tenant: Annotated[str, typer.Argument(help="L0:L1")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="PATH=VALUE, e.g. fees.base_delivery_fee_minor=299 or "
        "branding.display_name='Acme Eats'; VALUE is JSON when it parses as JSON, else text; "
        "repeat for several")] = None,
    unset: Annotated[list[str] | None, typer.Option(
        help="PATH to remove (back to the deployment's default); repeat for several")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="a JSON object merged into the config (RFC 7396 merge patch: null "
        "removes a key), applied before --set and --unset")] = None,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Change a tenant's config (keys: currency, branding, fees, dispatch, parties; see
    docs/tenant-config.md); the result is validated as a whole and printed as JSON."""
    from lastmile.app.tenants import configure
    from lastmile.core.errors import DomainError

    tid = _tenant(tenant)
    patch: dict[str, object] = {}
    try:
        if file is not None:
            loaded = json.loads(file.read_text())
            if not isinstance(loaded, dict):
                raise ValueError(f"{file} must hold a JSON object")
            patch = _combine(patch, loaded)
        for item in set_ or []:
            path, sep, raw = item.partition("=")
            if not sep or not path:
                raise ValueError(f"--set takes PATH=VALUE (got {item!r})")
            patch = _combine(patch, _nested(path, _json_or_text(raw)))
        for path in unset or []:
            patch = _combine(patch, _nested(path, None))
    except (OSError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if not patch:
        console.print("[red]nothing to change: give --set, --unset or --file[/red]")
        raise typer.Exit(2)
    container = _container(data_dir, database_url)
    try:
        updated = configure(container.services, patch, tenant_id=tid)
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    finally:
        container.close()
    typer.echo(json.dumps(_tenant_doc(updated), indent=2, sort_keys=True))


def _tenant_doc(t: Tenant) -> dict[str, object]:
    return {"id": t.id, "name": t.name, "kind": t.kind.value, "version": t.version,
            "config": t.config}


def _combine(a: dict[str, object], b: dict[str, object]) -> dict[str, object]:
    """One merge patch doing what ``a`` then ``b`` do (nulls kept: they remove keys)."""
    out = dict(a)
    for key, value in b.items():
        below = out.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            out[key] = _combine(below, value)
        else:
            out[key] = value
    return out


def _json_or_text(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _nested(path: str, value: object) -> dict[str, object]:
    """``{"a": {"b": value}}`` for ``"a.b"``."""
    parts = path.split(".")
    if not all(parts):
        raise ValueError(f"a config path is keys joined by '.' (got {path!r})")
    out: object = value
    for part in reversed(parts):
        out = {part: out}
    assert isinstance(out, dict)
    return out


@keys_app.command("issue")
def keys_issue(
    role: Annotated[str, typer.Option(help="consumer, merchant, courier or ops")],
    subject_id: Annotated[str, typer.Option("--id", help="the consumer/merchant/courier id; "
                                            "any label for ops")],
    tenant: TenantOpt = DEFAULT_TENANT,
    acts_for: Annotated[list[str] | None, typer.Option(
        "--acts-for", help="ops keys: a tenant pattern (doortest:*) the key may also act for "
        "with the X-Lastmile-Tenant header; repeat for several")] = None,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Issue an API key bound to a tenant; it is printed once and only its hash is stored."""
    from lastmile.app.auth import issue_api_key
    from lastmile.app.tenancy import acting_as
    from lastmile.app.tenants import ensure_tenant
    from lastmile.core.errors import DomainError

    tenant = _tenant(tenant)
    container = _container(data_dir, database_url)
    try:
        ensure_tenant(container.services, tenant)
        with acting_as(tenant):
            key_id, plaintext = issue_api_key(container.services, role=role,
                                              subject_id=subject_id, acts_for=acts_for or ())
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    finally:
        container.close()
    console.print(f"key id {key_id} ({role} {subject_id}, tenant {tenant}):")
    typer.echo(plaintext)


@dead_app.command("list")
def deadletters_list(
    subscriber: Annotated[str | None, typer.Option(help="only this subscriber's (e.g. drive)")]
    = None,
    include_replayed: Annotated[bool, typer.Option(
        "--all", help="also the ones already replayed")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="at most this many")] = 100,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """List parked events, oldest first: id, subscriber, event, attempts, last error."""
    from lastmile.app.dead_letters import list_dead_letters

    container = _container(data_dir, database_url)
    try:
        found = list_dead_letters(container.services, subscriber=subscriber,
                                  include_replayed=include_replayed, limit=limit)
    finally:
        container.close()
    table = Table(title=f"{len(found)} dead letter(s)")
    for col in ("id", "subscriber", "event", "subject", "attempts", "parked", "replayed",
                "last error"):
        table.add_column(col)
    for d in found:
        table.add_row(d.id, d.subscriber, f"{d.event.type} {d.event.event_id}",
                      d.event.subject_id, str(d.attempts), _when(d.parked_at),
                      _when(d.replayed_at), d.last_error)
    console.print(table)


@dead_app.command("replay")
def deadletters_replay(
    ids: Annotated[list[str], typer.Argument(help="dead letter ids (from 'list')")],
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Queue each event again for its one subscriber; the running relay delivers it.
    Idempotent: a letter already replayed is reported and left alone."""
    from lastmile.app.dead_letters import replay_dead_letter
    from lastmile.core.errors import DomainError

    container = _container(data_dir, database_url)
    missing = False
    try:
        for dead_letter_id in ids:
            try:
                replay = replay_dead_letter(container.services, dead_letter_id,
                                            requeue=container.requeue)
            except DomainError as exc:
                console.print(f"[red]{exc.message}[/red]")
                missing = True
                continue
            state = "queued" if replay.queued else "already replayed"
            console.print(f"{dead_letter_id}: {state} for {replay.dead_letter.subscriber}")
    finally:
        container.close()
    if missing:
        raise typer.Exit(2)


def _when(ts: float | None) -> str:
    from datetime import UTC, datetime

    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@eta_app.command("promote")
def eta_promote(
    models: Annotated[Path, typer.Option(help="the model folder", envvar="LASTMILE_ETA_MODELS")],
    hours: Annotated[float, typer.Option(min=0.1, help="judge on orders placed in the last "
                                         "this many hours")] = 24.0,
    min_orders: Annotated[int, typer.Option(min=1, help="delivered orders with a shadow "
                                            "estimate needed to decide")] = 200,
    force: Annotated[bool, typer.Option(help="promote whatever the live errors")] = False,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Promote the shadow model when its live MAE beats the incumbent's; print one JSON line.

    Exit 1 when it is not promoted (not enough orders, or not better)."""
    from lastmile.adapters.eta_models import FileModelRegistry
    from lastmile.app.eta import decide_promotion, live_errors
    from lastmile.core.errors import DomainError

    registry = FileModelRegistry(models)
    container = _container(data_dir, database_url)
    try:
        services = container.services
        errors = live_errors(services, since=services.clock.now() - hours * 3600)
    finally:
        container.close()
    decision = decide_promotion(*(errors or (None, None)), min_orders=min_orders)
    reason, promoted = decision.reason, None
    if decision.promote or force:
        try:
            promoted = registry.promote()
        except DomainError as exc:  # no shadow to promote
            reason = exc.message
    print(json.dumps({"promoted": promoted, "reason": reason, **{
        role: None if e is None else {"model": e.model, "orders": e.orders,
                                      "mae_s": round(e.mae_s, 1),
                                      "coverage80": round(e.coverage80, 3)}
        for role, e in (("incumbent", decision.served), ("shadow", decision.shadow))}}))
    if promoted is None:
        raise typer.Exit(1)
def _instant(value: str | None, option: str) -> float | None:
    """Epoch seconds from ``value`` (epoch seconds, or an ISO date or date-time; UTC unless
    it names its offset); exit 2 naming the option when it is neither."""
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        console.print(f"[red]{option} must be epoch seconds or an ISO date/date-time "
                      f"(got {value!r})[/red]")
        raise typer.Exit(2) from exc
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


@eta_app.command("export")
def eta_export(
    out: Annotated[Path, typer.Option(help="the Parquet file to write (replaced)")],
    since: Annotated[str | None, typer.Option(
        help="orders placed at or after this (epoch s or ISO date/date-time, UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="orders placed before this")] = None,
    tenant: Annotated[str, typer.Option(help="whose history, L0:L1 (env LASTMILE_TENANT)",
                                        envvar="LASTMILE_TENANT")] = DEFAULT_TENANT,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Write the tenant's ETA history as Parquet: one row per delivered or cancelled order,
    the features known when it was placed and its realised stages (docs/eta.md, History)."""
    from lastmile.adapters.eta_parquet import write_history
    from lastmile.app.eta_history import records
    from lastmile.app.tenancy import acting_as

    start, end = _instant(since, "--since"), _instant(until, "--until")
    tenant = _tenant(tenant)
    container = _container(data_dir, database_url)
    try:
        with acting_as(tenant):
            found = records(container.services, since=start, until=end)
    finally:
        container.close()
    rows = write_history(found, out)
    delivered = sum(1 for r in found if r.finish is not None and r.finish.status == "delivered")
    console.print(f"{rows} order(s) ({delivered} delivered, {rows - delivered} cancelled) "
                  f"written to {out}")


@app.command()
def seed(
    seed: Annotated[int, typer.Option(help="random seed: same seed, same city")] = 7,
    merchants: Annotated[int, typer.Option(min=1, max=2000)] = 24,
    consumers: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    couriers: Annotated[int, typer.Option(min=1, max=10_000)] = 30,
    tenant: TenantOpt = DEFAULT_TENANT,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Create the demo region with merchants, menus, consumers and couriers in a tenant
    (its region id is ``reg_demo``, suffixed with the tenant outside the default one)."""
    from lastmile.app.tenancy import acting_as
    from lastmile.app.tenants import ensure_tenant
    from lastmile.sim.seed import seed_demo, tenant_region_id

    tenant = _tenant(tenant)
    container = _container(data_dir, database_url)
    try:
        ensure_tenant(container.services, tenant)
        with Progress(TextColumn("seeding"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar, acting_as(tenant):
            task = bar.add_task("seed", total=merchants + consumers + couriers)
            summary = seed_demo(container.services, seed=seed, merchants=merchants,
                                consumers=consumers, couriers=couriers,
                                region_id=tenant_region_id(tenant),
                                progress=lambda n: bar.advance(task, n))
    finally:
        container.close()
    table = Table(title=f"seeded {summary.region.name} ({summary.region.id}) in {tenant}")
    for col in ("merchants", "consumers", "couriers"):
        table.add_column(col, justify="right")
    table.add_row(str(len(summary.merchant_ids)), str(len(summary.consumer_ids)),
                  str(len(summary.courier_ids)))
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    dispatch_every: Annotated[float | None, typer.Option(
        min=1, help="run the dispatcher in this process every N seconds (off by default: "
        "one dispatcher per region partition)")] = None,
    profile: Annotated[str | None, typer.Option(
        help="embedded (one process; default) or scale (PostgreSQL, Redis and NATS required; "
        "env LASTMILE_PROFILE). See docs/scaling.md.")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="API processes (scale profile; env LASTMILE_WORKERS; default 1)")] = None,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the ops dashboard (/ops/dashboard).
    `--profile scale --workers N` runs N API processes on PostgreSQL, Redis and NATS
    JetStream (dispatch then runs in `lastmile dispatcher` workers; docs/scaling.md)."""
    import uvicorn

    from lastmile import serving
    from lastmile.adapters.telemetry.setup import configure_process
    from lastmile.api.app import create_app
    from lastmile.bootstrap import build
    from lastmile.profiles import SCALE, ProfileError, check_profile

    settings = _settings(data_dir, database_url)
    configure_process(settings)
    settings = replace(settings, profile=profile or settings.profile,
                       workers=workers or settings.workers)
    try:
        check_profile(settings)
        if settings.profile == SCALE and dispatch_every is not None:
            raise ProfileError("--dispatch-every runs a dispatcher inside the API process; "
                               "the scale profile runs them apart: `lastmile dispatcher`")
        if settings.profile == SCALE:
            serving.run(settings, host=host, port=port, announce=console.print)
            return
    except (ProfileError, ConnectionError) as exc:
        console.print(f"[red]lastmile serve: {exc}[/red]")
        raise typer.Exit(2) from exc
    container = build(settings, dispatch_interval_s=dispatch_every)
    console.print(f"lastmile on http://{host}:{port}  (docs: /docs; database "
                  f"{container.settings.redacted_database_url()})")
    # log_config=None keeps configure_process's handler; the access log is the middleware's
    # (route templates, request ids; uvicorn's would print raw, token-bearing paths).
    uvicorn.run(create_app(container), host=host, port=port, log_level="warning",
                log_config=None, access_log=False)


@app.command()
def dispatcher(
    every: Annotated[float, typer.Option(
        min=0.05, help="seconds between dispatch rounds of each region this worker holds")] = 2.0,
    ttl: Annotated[float, typer.Option(
        min=0.5, help="lease time to live in seconds: a killed worker's regions pass to "
        "another within TTL + one renew interval (TTL/3)")] = 10.0,
    housekeeping_every: Annotated[float, typer.Option(
        min=0.5, help="seconds between housekeeping runs (late orders, offer expiry, shift "
        "ends); one process of the deployment runs them at a time")] = 30.0,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Run a dispatcher worker: claim a fair share of the regions (of every tenant) through
    leases with fencing tokens, renew them every TTL/3, dispatch only the regions held, each
    round as its region's tenant (a stale owner's round is refused by the fence), release
    them on SIGTERM or Ctrl-C. Start one per core or host; they spread the regions between
    them (docs/partitions.md, docs/tenants-workers.md)."""
    from lastmile.adapters.dispatch_fleet import (
        DispatcherProcess,
        FleetSettings,
        run_until_signalled,
    )
    from lastmile.adapters.telemetry.setup import configure_process
    from lastmile.bootstrap import build

    settings = _settings(data_dir, database_url)
    configure_process(settings)
    container = build(settings)
    fleet = FleetSettings(every_s=every, ttl_s=ttl, housekeeping_every_s=housekeeping_every)
    process = DispatcherProcess(container.services, container.live, fleet,
                                worker_id=container.worker_id)
    console.print(f"dispatcher {process.worker_id} on "
                  f"{container.settings.redacted_database_url()}: rounds every {every} s, "
                  f"lease TTL {ttl} s, takeover within {fleet.takeover_bound_s:.1f} s")
    try:
        run_until_signalled(process, report=lambda line: print(line, flush=True))
    finally:
        container.close()


from lastmile.experiments_cli import experiment_app  # noqa: E402
from lastmile.ledger_cli import ledger_app  # noqa: E402
from lastmile.power_cli import power_app  # noqa: E402
from lastmile.probe.command import probe  # noqa: E402
from lastmile.probe.testkit_command import testkit_app  # noqa: E402
from lastmile.sim.demo_command import demo  # noqa: E402  (typer command, lazy body)
from lastmile.sim.eta_command import evaluate as eta_evaluate  # noqa: E402
from lastmile.sim.eta_command import train as eta_train  # noqa: E402
from lastmile.sim.mdrp.command import mdrp  # noqa: E402
from lastmile.sim.simulate_command import simulate  # noqa: E402

app.command("simulate")(simulate)
app.command("demo")(demo)
app.command("mdrp")(mdrp)
app.command("probe")(probe)
app.add_typer(testkit_app, name="testkit")
app.add_typer(ledger_app, name="ledger")
app.add_typer(experiment_app, name="experiment")
app.add_typer(power_app, name="power")
eta_app.command("train")(eta_train)
eta_app.command("evaluate")(eta_evaluate)


if __name__ == "__main__":  # pragma: no cover
    app()
