from pathlib import Path

import pytest

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


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("LASTMILE_WORKERS", "two", "an integer"),
    ("LASTMILE_SHED_BROWSE_INFLIGHT", "1.5", "an integer"),
    ("LASTMILE_BREAKER_RESET_S", "soon", "a number"),
    ("LASTMILE_RELAY_LEASE_S", "3s", "a number"),
    ("LASTMILE_TRACING", "jaeger", "one of off, console, memory"),
])
def test_a_malformed_setting_is_refused_naming_its_variable(variable, value, expected):
    with pytest.raises(ValueError, match=f"{variable} must be {expected}"):
        Settings.from_env({variable: value})


def test_numbers_and_an_empty_rate_limit_are_read_as_their_kinds():
    s = Settings.from_env({"LASTMILE_SHED_BROWSE_INFLIGHT": "8", "LASTMILE_BREAKER_RESET_S": "2.5",
                           "LASTMILE_RATE_LIMIT_BROWSE": "", "LASTMILE_RELAY_LEASE_S": "3"})
    assert (s.shed_browse_inflight, s.breaker_reset_s, s.rate_limit_browse,
            s.relay_lease_s) == (8, 2.5, "", 3.0)
    assert Settings.from_env({}).relay_lease_s is None
