"""Running the probe: a key for it, and the journey timed into a result."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx

from lastmile.adapters.clock import SystemClock
from lastmile.probe.journey import FAIL, Journey, JourneyConfig, ProbeRefused
from lastmile.probe.report import ProbeResult
from lastmile.settings import Settings

KEY_ENV = "LASTMILE_PROBE_KEY"


@contextmanager
def local_key(tenant: str, settings: Settings) -> Iterator[str]:
    """An ops key of ``tenant``, issued through the local settings' database (the
    deployment's, when they reach it) and revoked when the block ends. The tenant is made a
    test tenant when missing and its name is a test name (``doortest:*``, ``*:probe``...);
    a live tenant, or a live name, is refused (``ProbeRefused``). Never migrates or creates
    a database: a SQLite file that is not there is refused too."""
    from lastmile.adapters.db.engine import sqlite_url
    from lastmile.app.auth import issue_api_key
    from lastmile.app.tenancy import acting_as
    from lastmile.app.tenants import create_tenant, get_tenant
    from lastmile.bootstrap import build
    from lastmile.core.errors import Conflict, NotFound
    from lastmile.core.tenancy import TenantKind, default_kind

    if settings.database_url is None and not (settings.data_dir / "lastmile.sqlite").exists():
        raise ProbeRefused(f"no --key (or {KEY_ENV}) and no database here to issue one "
                           f"({settings.data_dir / 'lastmile.sqlite'} does not exist; set "
                           "LASTMILE_DATABASE_URL or LASTMILE_DATA_DIR to the deployment's)")
    # A throwaway signing key: the probe's container signs nothing, and must not write the
    # deployment's secret_key file where a data dir happens to be.
    settings = replace(settings, database_url=settings.database_url
                       or sqlite_url(settings.data_dir), secret_key=secrets.token_hex(32))
    try:
        container = build(settings, run_migrations=False)
    except Exception as exc:  # noqa: BLE001 - reported and refused: exit 2 with the cause
        raise ProbeRefused(f"cannot reach the database to issue a key: {exc}") from exc
    services, subject = container.services, f"probe-{secrets.token_hex(6)}"
    try:
        try:
            found = get_tenant(services, tenant)
        except NotFound:
            if default_kind(tenant) is not TenantKind.TEST:
                raise ProbeRefused(
                    f"tenant {tenant} does not exist and is not a test tenant's name; create "
                    f"it first: lastmile tenants create {tenant} --kind test") from None
            try:
                found = create_tenant(services, tenant, name="Synthetic probe",
                                      kind=TenantKind.TEST)
            except Conflict:
                found = get_tenant(services, tenant)
        if not found.is_test:
            raise ProbeRefused(f"tenant {tenant} is a {found.kind.value} tenant; the probe "
                               "runs in test tenants only")
        with acting_as(tenant):
            _, key = issue_api_key(services, role="ops", subject_id=subject)
        yield key
    finally:
        with acting_as(tenant), services.uow() as uow:
            uow.api_keys.revoke_subject("ops", subject)
            uow.commit()
        container.close()


def run_probe(*, base_url: str, tenant: str, key: str, timeout_s: float, webhook_url: str,
              allow_skips: bool, transport: httpx.BaseTransport | None = None
              ) -> tuple[ProbeResult, str | None]:
    """The journey's result, and the refusal's reason when the probe refused to run."""
    wall = SystemClock().now
    started = time.perf_counter()
    config = JourneyConfig(tenant=tenant, ops_key=key, timeout_s=timeout_s,
                           webhook_url=webhook_url)
    refused = None
    with httpx.Client(base_url=base_url, timeout=min(30.0, timeout_s),
                      transport=transport) as client:
        journey = Journey(client, config, wall)
        try:
            steps = journey.run()
        except ProbeRefused as exc:
            refused, steps = str(exc), journey.steps
            next(s for s in steps if s.status == FAIL).detail = refused
    result = ProbeResult(tenant=tenant, base_url=base_url, steps=tuple(steps),
                         total_ms=(time.perf_counter() - started) * 1000, finished_at=wall(),
                         allow_skips=allow_skips)
    return result, refused
