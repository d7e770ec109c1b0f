from pathlib import Path

from lastmile.settings import Settings


def test_defaults_are_the_embedded_profile():
    s = Settings.from_env({})
    assert (s.database_url, s.redis_url, s.webhooks_allow_private) == (None, None, False)
    assert s.data_dir == Path("data")


def test_environment_selects_the_scale_out_profile():
    s = Settings.from_env({"LASTMILE_DATABASE_URL": "postgresql://u:secret@db/x",
                           "LASTMILE_REDIS_URL": "redis://r:6379/0",
                           "LASTMILE_REDIS_PREFIX": "city1:",
                           "LASTMILE_WEBHOOKS_ALLOW_PRIVATE": "1"})
    assert s.redis_url == "redis://r:6379/0" and s.redis_prefix == "city1:"
    assert s.webhooks_allow_private is True


def test_the_database_password_never_appears_in_banners():
    s = Settings.from_env({"LASTMILE_DATABASE_URL": "postgresql://u:secret@db:5432/x"})
    assert "secret" not in s.redacted_database_url()
    assert s.redacted_database_url() == "postgresql://u:***@db:5432/x"
