"""``lastmile power mde|weeks|simulate`` print one JSON line; bad input exits 2 naming it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lastmile.core.experiments.power import mde_after_weeks, weeks_needed
from lastmile.power_cli import power_app


def test_mde_and_weeks_print_the_core_figures() -> None:
    run = CliRunner().invoke
    out = run(power_app, ["mde", "--sd", "10", "--units-per-week", "2000", "--weeks", "3"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["mde"] == round(
        mde_after_weeks(weeks=3, sd=10, units_per_week=2000), 6)
    out = run(power_app, ["weeks", "--effect", "0.5", "--sd", "10", "--units-per-week", "2000",
                          "--icc", "0.05", "--cluster-size", "20"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["weeks"] == 13
    from lastmile.core.experiments.power import Clustering

    assert weeks_needed(effect=0.5, sd=10, units_per_week=2000,
                        clustering=Clustering(icc=0.05, cluster_size=20)) == 13


def test_simulate_runs_seeded_experiments_and_reports_power() -> None:
    out = CliRunner().invoke(power_app, ["simulate", "--design", "switchback", "--units", "160",
                                         "--cluster-size", "5", "--icc", "0.2", "--effect", "1",
                                         "--simulations", "20", "--processes", "1"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["simulations"] == 20 and doc["power"] > 0.5 and doc["backend"] == "processes"


def test_bad_input_exits_2_naming_the_rule() -> None:
    out = CliRunner().invoke(power_app, ["mde", "--sd", "-1", "--units-per-week", "5"])
    assert out.exit_code == 2 and "sd must be > 0" in out.output
    out = CliRunner().invoke(power_app, ["simulate", "--design", "nope"])
    assert out.exit_code == 2 and "--design must be one of" in out.output
