"""``lastmile testkit ...`` on a local database: JSON out, a live tenant refused."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lastmile.cli import app


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["testkit", *args])


def test_testkit_commands_make_parties_and_an_order_in_a_test_tenant(tmp_path: Path):
    where = ["--tenant", "doortest:cli", "--data-dir", str(tmp_path)]
    m = run("merchant", *where, "--template", "burgers", "--with-key")
    assert m.exit_code == 0, m.output
    merchant = json.loads(m.stdout.strip().splitlines()[-1])
    assert merchant["api_key"].startswith("lm_mer_") and len(merchant["items"]) == 3
    con = json.loads(run("consumer", *where, "--lat", "37.44", "--lng", "-122.14")
                     .stdout.strip().splitlines()[-1])
    assert con["api_key"] is None and con["region_id"] == "reg_test_doortest_cli"
    cou = run("courier", *where, "--lat", "37.44", "--lng", "-122.14", "--auto-accept")
    assert json.loads(cou.stdout.strip().splitlines()[-1])["auto_accept"] is True
    o = run("order", *where, "--consumer", con["id"], "--merchant", merchant["id"],
            "--require-pin")
    placed = json.loads(o.stdout.strip().splitlines()[-1])
    assert placed["status"] == "placed" and placed["total_minor"] == placed["quote_total_minor"]


def test_testkit_refuses_a_live_tenant_with_exit_2(tmp_path: Path):
    live = run("consumer", "--tenant", "lastmile:default", "--data-dir", str(tmp_path))
    assert live.exit_code == 2 and "not_a_test_tenant" in live.output
    missing = run("consumer", "--tenant", "acme:eats", "--data-dir", str(tmp_path))
    assert missing.exit_code == 2 and "no tenant acme:eats" in missing.output
