"""The signing key: from settings, else generated once per data directory and kept private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lastmile.adapters.secret_key import signing_key
from lastmile.settings import Settings


def test_the_embedded_profile_generates_a_key_once_and_keeps_it(tmp_path: Path) -> None:
    first = signing_key(Settings(data_dir=tmp_path))
    assert signing_key(Settings(data_dir=tmp_path)) == first and len(first) == 32
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600
    assert signing_key(Settings(data_dir=tmp_path / "other")) != first


def test_a_configured_key_wins_and_a_short_one_is_refused_without_showing_it(
        tmp_path: Path) -> None:
    key = "s" * 40
    assert signing_key(Settings(data_dir=tmp_path, secret_key=key)) == signing_key(
        Settings(data_dir=tmp_path / "b", secret_key=key))
    with pytest.raises(ValueError) as err:
        signing_key(Settings(data_dir=tmp_path, secret_key="hunter2"))
    assert "hunter2" not in str(err.value)


def test_secrets_and_urls_with_passwords_stay_out_of_the_settings_repr() -> None:
    s = Settings.from_env({"LASTMILE_SECRET_KEY": "k" * 40,
                           "LASTMILE_DATABASE_URL": "postgresql://u:pw-secret@db/x",
                           "LASTMILE_REDIS_URL": "redis://:redis-secret@r:6379/0"})
    assert s.secret_key == "k" * 40
    text = repr(s)
    assert "k" * 40 not in text and "pw-secret" not in text and "redis-secret" not in text
