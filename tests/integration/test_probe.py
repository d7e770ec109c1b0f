"""``lastmile probe`` against a real ``lastmile serve``: the journey passes end to end in
the test tenant (dispatched by the server's own dispatcher, its Drive webhook captured by the
sandbox and checked), prints one JSON object last, writes its metrics, and leaves every other
tenant's rows as they were; a live tenant is refused with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from harness import LASTMILE, run_cli, server  # noqa: E402

from lastmile.app import ordering  # noqa: E402
from lastmile.bootstrap import build  # noqa: E402
from lastmile.settings import Settings  # noqa: E402
from lastmile.sim.seed import seed_demo  # noqa: E402

pytestmark = pytest.mark.slow

TEST_TENANT = "doortest:probe"


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTMILE_")}
    src = str(Path(__file__).resolve().parents[2] / "src")
    env.update(LASTMILE_DATA_DIR=str(data_dir), PYTHONPATH=src)
    return env


def _rows_by_tenant(data_dir: Path) -> dict[tuple[str, str], int]:
    """(table, tenant) -> rows, for every table with a tenant column."""
    engine = sa.create_engine(f"sqlite:///{data_dir / 'lastmile.sqlite'}")
    try:
        counts: dict[tuple[str, str], int] = {}
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                columns = {c["name"] for c in sa.inspect(conn).get_columns(table)}
                if "tenant_id" not in columns:
                    continue
                for tenant, n in conn.execute(sa.text(
                        f'SELECT tenant_id, count(*) FROM "{table}" GROUP BY tenant_id')):
                    counts[(table, tenant)] = n
        return counts
    finally:
        engine.dispose()


def _seed_with_an_order(data_dir: Path) -> None:
    """The default (live) tenant's city, and one order in it: what the probe must leave."""
    container = build(Settings(data_dir=data_dir))
    try:
        svc = container.services
        seed = seed_demo(svc, seed=3, merchants=3, consumers=3, couriers=3)
        with svc.uow(read_only=True) as uow:
            merchant = uow.merchants.get(seed.merchant_ids[0])
        assert merchant is not None
        ordering.place_order(svc, ordering.OrderRequest(
            consumer_id=seed.consumer_ids[0], merchant_id=merchant.id,
            lines=(ordering.LineRequest(item_id=merchant.menu[0].id, quantity=1),),
            dropoff=merchant.location), idempotency_key="live-order")
    finally:
        container.close()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    env = _env(tmp_path)
    _seed_with_an_order(tmp_path)
    with server(env, ["--dispatch-every", "1"]) as srv:
        _settled(tmp_path)
        yield srv.base, env, tmp_path


def _settled(data_dir: Path, *, quiet_s: float = 2.0, limit_s: float = 30.0) -> None:
    """Wait until the server's own subscribers (ledger, payments, ...) have handled the
    seeded order's events: the rows stop changing for ``quiet_s``. What they write then is
    the live tenant's own processing, not the probe's."""
    start, last = time.monotonic(), _rows_by_tenant(data_dir)
    while time.monotonic() - start < limit_s:
        time.sleep(quiet_s)
        now = _rows_by_tenant(data_dir)
        if now == last:
            return
        last = now


def _probe(base: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LASTMILE, "probe", "--base-url", base, *args], env=env,
                          capture_output=True, text=True, timeout=240)


def test_the_probe_passes_against_serve_and_leaves_other_tenants_alone(deployment, tmp_path):
    base, env, data_dir = deployment
    before = _rows_by_tenant(data_dir)
    metrics = tmp_path / "textfile" / "lastmile_probe.prom"
    done = _probe(base, env, "--tenant", TEST_TENANT, "--timeout", "30",
                  "--metrics-file", str(metrics))
    # Run again at once, JSON only: the second run starts from what the first left.
    again = _probe(base, env, "--tenant", TEST_TENANT, "--timeout", "30", "--json-only")
    print(done.stdout)  # the table and the JSON line, for the record (pytest -s)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["ok"] is True and last["tenant"] == TEST_TENANT and last["base_url"] == base
    steps = {s["name"]: s for s in last["steps"]}
    assert all(s["status"] == "pass" for s in steps.values()), steps
    assert steps["deliver"]["detail"] == "delivered with PIN"
    assert all(s["latency_ms"] > 0 for s in last["steps"]) and last["total_ms"] > 0

    [line] = again.stdout.strip().splitlines()
    second = json.loads(line)
    assert again.returncode == 0, again.stderr
    assert all(s["status"] == "pass" for s in second["steps"])

    after = _rows_by_tenant(data_dir)
    # Every other tenant's rows as they were (the platform's own machinery, leases and
    # heartbeats, is the platform tenant's).
    others = {k for k in before.keys() | after.keys()
              if k[1] not in (TEST_TENANT, "platform:system")}
    assert {k[0] for k in others} >= {"orders", "merchants", "consumers", "couriers"}
    assert {k: before.get(k) for k in others} == {k: after.get(k) for k in others}
    assert after[("orders", TEST_TENANT)] - before.get(("orders", TEST_TENANT), 0) == 4
    default = ("orders", "lastmile:default")
    assert before[default] == after[default] == 1
    assert before[("merchants", "lastmile:default")] == after[("merchants", "lastmile:default")]
    # The probe's own keys are revoked: no ops key is left live in the tenant.
    engine = sa.create_engine(f"sqlite:///{data_dir / 'lastmile.sqlite'}")
    with engine.connect() as conn:
        live = conn.execute(sa.text(
            "SELECT subject_id FROM api_keys WHERE tenant_id = :t AND role = 'ops' "
            "AND NOT revoked"), {"t": TEST_TENANT}).scalars().all()
    engine.dispose()
    assert live == []

    text = metrics.read_text()
    assert f'lastmile_probe_ok{{tenant="{TEST_TENANT}"}} 1.0' in text
    assert f'lastmile_probe_step_ok{{step="deliver",tenant="{TEST_TENANT}"}} 1.0' in text
    assert "lastmile_probe_last_run_timestamp_seconds" in text
    assert "lastmile_probe_step_latency_seconds" in text


def test_the_probe_refuses_a_live_tenant_with_exit_2(deployment):
    base, env, data_dir = deployment
    before = _rows_by_tenant(data_dir)
    ops = run_cli(["keys", "issue", "--role", "ops", "--id", "ops-1"], env).splitlines()[-1]
    with_key = _probe(base, env, "--tenant", "lastmile:default", "--key", ops)
    assert with_key.returncode == 2, with_key.stdout + with_key.stderr
    last = json.loads(with_key.stdout.strip().splitlines()[-1])
    assert last["ok"] is False and "live tenant" in last["error"]
    # Without a key, a live tenant's name is refused before any key or tenant is made.
    no_key = _probe(base, env, "--tenant", "acme:eats")
    assert no_key.returncode == 2
    assert "not a test tenant" in json.loads(no_key.stdout.strip().splitlines()[-1])["error"]
    after = _rows_by_tenant(data_dir)
    # The platform's own machinery (its dispatcher's lease, taken when the loaded machine lets
    # it, heartbeats) is the platform tenant's, as in the test above.
    grown = {k for k in after if after[k] != before.get(k) and k[1] != "platform:system"}
    assert grown <= {("api_keys", "lastmile:default")}  # the ops key this test issued
    assert ("tenants", "acme:eats") not in after
