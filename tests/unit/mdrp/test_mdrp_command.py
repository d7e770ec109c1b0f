import json

import pytest
import typer

from lastmile.sim.mdrp.command import mdrp

FILES = {
    "solution_info_assignments.txt",
    "solution_info_orders.txt",
    "solution_info_couriers.txt",
    "metrics.json",
}


def test_one_instance_writes_the_three_files_straight_into_out(tiny_instance, tmp_path):
    out = tmp_path / "out"
    mdrp([tiny_instance], out=out, policy="optimised")
    assert {p.name for p in out.iterdir()} == FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["feasible"] is True and metrics["orders_delivered"] == 4


def test_many_instances_write_one_folder_each(instance_writer, tmp_path):
    a, b = instance_writer("a"), instance_writer("b")
    out = tmp_path / "out"
    mdrp([a, b], out=out, policy="greedy")
    assert {p.name for p in out.iterdir()} == {"a", "b"}
    assert {p.name for p in (out / "a").iterdir()} == FILES


def test_an_unknown_policy_is_a_bad_parameter(tiny_instance, tmp_path):
    with pytest.raises(typer.BadParameter, match="greedy"):
        mdrp([tiny_instance], out=tmp_path, policy="clever")


def test_a_folder_without_orders_is_a_bad_parameter(tmp_path):
    with pytest.raises(typer.BadParameter, match="orders.txt"):
        mdrp([tmp_path], out=tmp_path / "out")


def test_the_command_runs_through_typer(tiny_instance, tmp_path):
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command()(mdrp)
    result = CliRunner().invoke(
        app, [str(tiny_instance), "--out", str(tmp_path / "o"), "--policy", "greedy", "--tick", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "solution_info_orders.txt").is_file()
