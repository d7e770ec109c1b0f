"""Profiles: what the scale profile requires, the pool share rule, and `lastmile serve`
refusing what it cannot run (before starting anything)."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lastmile.bootstrap import build
from lastmile.cli import app as cli
from lastmile.profiles import ProfileError, check_profile, pool_size
from lastmile.serving import unreachable, worker_env
from lastmile.settings import Settings

SCALE = Settings(profile="scale", database_url="postgresql://u:pw@db/x",
                 redis_url="redis://r:6379/0", nats_url="nats://n:4222")
NO_URLS = ("LASTMILE_DATABASE_URL", "LASTMILE_REDIS_URL", "LASTMILE_NATS_URL",
           "LASTMILE_PROFILE", "LASTMILE_WORKERS")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once closed


def test_the_environment_chooses_profile_workers_and_connection_budget():
    s = Settings.from_env({"LASTMILE_PROFILE": "scale", "LASTMILE_WORKERS": "4",
                           "LASTMILE_DB_MAX_CONNECTIONS": "60"})
    assert (s.profile, s.workers, s.db_max_connections) == ("scale", 4, 60)
    assert Settings.from_env({}).profile == "embedded"
    with pytest.raises(ValueError, match="LASTMILE_WORKERS must be an integer"):
        Settings.from_env({"LASTMILE_WORKERS": "two"})


def test_the_scale_profile_names_every_missing_server():
    with pytest.raises(ProfileError) as err:
        check_profile(Settings(profile="scale", redis_url="redis://r"))
    message = str(err.value)
    assert "LASTMILE_DATABASE_URL" in message and "LASTMILE_NATS_URL" in message
    assert "LASTMILE_REDIS_URL" not in message and "never falls back" in message


def test_the_scale_profile_refuses_sqlite_without_showing_the_url():
    with pytest.raises(ProfileError, match="must be PostgreSQL") as err:
        check_profile(replace(SCALE, database_url="sqlite:////tmp/secret-path.sqlite"))
    assert "secret-path" not in str(err.value)


def test_several_workers_need_the_scale_profile():
    with pytest.raises(ProfileError, match="2 workers need the scale profile"):
        check_profile(Settings(workers=2))
    check_profile(replace(SCALE, workers=8))
    with pytest.raises(ProfileError, match="unknown profile 'big'"):
        check_profile(Settings(profile="big"))
    with pytest.raises(ProfileError, match="cannot give 50 processes"):
        check_profile(replace(SCALE, workers=50, db_max_connections=80))


def test_processes_share_the_connection_budget_and_one_keeps_ten_plus_ten():
    assert pool_size(Settings()) == 10
    assert pool_size(replace(SCALE, workers=2)) == 10  # 2 x (10 + 10) = 40 <= 80
    assert pool_size(replace(SCALE, workers=8)) == 5  # 8 x (5 + 5) = 80
    assert pool_size(replace(SCALE, workers=40)) == 1
    for workers in range(1, 41):
        assert workers * 2 * pool_size(replace(SCALE, workers=workers)) <= 80


def test_building_a_scale_container_without_its_servers_is_refused(tmp_path: Path):
    with pytest.raises(ProfileError, match="LASTMILE_REDIS_URL"):
        build(Settings(profile="scale", data_dir=tmp_path,
                       database_url="postgresql://u@127.0.0.1/x", nats_url="nats://n"))
    assert not (tmp_path / "lastmile.sqlite").exists()  # no fallback was built


def test_workers_receive_the_cli_options_through_the_environment(tmp_path: Path):
    env = worker_env(replace(SCALE, workers=3, data_dir=tmp_path / "d"))
    assert env["LASTMILE_PROFILE"] == "scale" and env["LASTMILE_WORKERS"] == "3"
    assert Path(env["LASTMILE_DATA_DIR"]).is_absolute()
    assert Settings.from_env({**env, "LASTMILE_REDIS_URL": "redis://r",
                              "LASTMILE_NATS_URL": "nats://n"}).workers == 3


def test_servers_that_do_not_answer_are_named_without_credentials():
    port = _closed_port()
    problems = unreachable(Settings(
        profile="scale", database_url=f"postgresql://u:pw@127.0.0.1:{port}/x",
        redis_url=f"redis://:pw@127.0.0.1:{port}/0", nats_url=f"nats://127.0.0.1:{port}"))
    assert [p.split(" at ")[0] for p in problems] == ["PostgreSQL", "Redis", "NATS"]
    assert all("pw" not in p for p in problems)


def test_serve_refuses_several_embedded_workers(monkeypatch, tmp_path: Path):
    for name in NO_URLS:
        monkeypatch.delenv(name, raising=False)
    out = CliRunner().invoke(cli, ["serve", "--workers", "2", "--data-dir", str(tmp_path)])
    assert out.exit_code == 2 and "scale profile" in out.output


def test_serve_scale_without_urls_says_what_is_missing(monkeypatch, tmp_path: Path):
    for name in NO_URLS:
        monkeypatch.delenv(name, raising=False)
    out = CliRunner().invoke(cli, ["serve", "--profile", "scale", "--data-dir", str(tmp_path)])
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert "LASTMILE_DATABASE_URL (PostgreSQL) is not set" in text
    assert not (tmp_path / "lastmile.sqlite").exists()


def test_serve_scale_keeps_the_dispatcher_out_of_api_processes(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("LASTMILE_DATABASE_URL", "postgresql://u@127.0.0.1/x")
    monkeypatch.setenv("LASTMILE_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("LASTMILE_NATS_URL", "nats://127.0.0.1:4222")
    out = CliRunner().invoke(cli, ["serve", "--profile", "scale", "--dispatch-every", "2",
                                   "--data-dir", str(tmp_path)])
    assert out.exit_code == 2 and "lastmile dispatcher" in " ".join(out.output.split())


def test_an_api_worker_refuses_a_database_that_was_not_migrated(monkeypatch, tmp_path: Path):
    from lastmile.adapters.db.revision import SchemaNotCurrent
    from lastmile.api.factory import create_app_from_env

    for name in NO_URLS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LASTMILE_DATA_DIR", str(tmp_path))
    with pytest.raises(SchemaNotCurrent, match="lastmile db upgrade"):
        create_app_from_env()
    build(Settings(data_dir=tmp_path)).close()  # migrates
    app = create_app_from_env()
    app.state.container.close()
