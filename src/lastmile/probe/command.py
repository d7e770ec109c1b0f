"""``lastmile probe``: run the synthetic journey against a deployment and report it.

Exit status: 0 when every step passed, 1 when one failed (or was skipped, unless
``--allow-skips``), 2 when the probe refused to run (a live or unknown tenant, no key).
The last line of stdout is always one JSON object. The body imports lazily: the CLI's
other commands do not pay for httpx and the journey.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

DEFAULT_TENANT = "doortest:probe"
KEY_ENV = "LASTMILE_PROBE_KEY"  # also in probe.run
console = Console()
errors = Console(stderr=True)


def _refused_line(tenant: str, base_url: str, reason: str) -> str:
    return json.dumps({"ok": False, "tenant": tenant, "base_url": base_url, "steps": [],
                       "total_ms": 0.0, "error": reason}, separators=(",", ":"))


def probe(
    base_url: Annotated[str, typer.Option(help="the deployment, e.g. https://api.example.com")],
    tenant: Annotated[str, typer.Option(help="the TEST tenant the journey runs in")]
    = DEFAULT_TENANT,
    key: Annotated[str | None, typer.Option(
        envvar=KEY_ENV, help="an ops key of the tenant, or one that acts for it (--acts-for); "
        "without one the probe issues itself a key through LASTMILE_DATABASE_URL / "
        "LASTMILE_DATA_DIR and revokes it afterwards")] = None,
    json_only: Annotated[bool, typer.Option(
        "--json-only", help="print only the JSON line (no table)")] = False,
    metrics_file: Annotated[Path | None, typer.Option(
        help="also write Prometheus gauges there (node_exporter textfile collector)")] = None,
    timeout: Annotated[float, typer.Option(
        min=1, help="seconds each waiting step (dispatch, webhook) may take")] = 60.0,
    allow_skips: Annotated[bool, typer.Option(
        "--allow-skips", help="a skipped step (a feature the deployment lacks) passes")] = False,
    webhook_url: Annotated[str, typer.Option(
        help="the Drive webhook endpoint registered (.invalid never resolves; a "
        "deployment with the sandbox captures test tenants' webhooks instead of sending)")] = "https://probe.lastmile.invalid/webhook",
) -> None:
    """Run a full journey (quote, order, confirm, ready, dispatch, accept, pickup, deliver,
    a Drive delivery with a webhook) through the public API of a running deployment, in a
    test tenant. Prints a table and, last, one JSON line; exit 0 iff every step passed,
    2 when it refuses to run (a live tenant). docs/probe.md shows how to schedule it."""
    from lastmile.core.errors import DomainError
    from lastmile.core.tenancy import parse_tenant
    from lastmile.probe.journey import ProbeRefused
    from lastmile.probe.report import summary, table, write_metrics
    from lastmile.probe.run import run_probe

    try:
        tenant = parse_tenant(tenant, field="--tenant")
    except DomainError as exc:
        errors.print(f"[red]lastmile probe: {exc.message}[/red]")
        print(_refused_line(tenant, base_url, exc.message), flush=True)
        raise typer.Exit(2) from exc
    try:
        with _key(key, tenant) as ops_key:
            result, refused = run_probe(base_url=base_url, tenant=tenant, key=ops_key,
                                        timeout_s=timeout, webhook_url=webhook_url,
                                        allow_skips=allow_skips)
    except ProbeRefused as exc:
        errors.print(f"[red]lastmile probe refused: {exc}[/red]")
        print(_refused_line(tenant, base_url, str(exc)), flush=True)
        raise typer.Exit(2) from exc
    if metrics_file is not None:
        write_metrics(metrics_file, result)
    if not json_only:
        console.print(table(result))
        console.print(summary(result.steps))
    if refused is not None:
        errors.print(f"[red]lastmile probe refused: {refused}[/red]")
    out = result.as_json() | ({"error": refused} if refused else {})
    print(json.dumps(out, separators=(",", ":")), flush=True)
    raise typer.Exit(2 if refused else 0 if result.ok else 1)


@contextmanager
def _key(given: str | None, tenant: str) -> Iterator[str]:
    if given:
        yield given
        return
    from lastmile.probe.run import local_key
    from lastmile.settings import Settings

    with local_key(tenant, Settings.from_env()) as issued:
        yield issued
